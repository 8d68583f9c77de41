import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Client,
  Metadata,
  status,
  Server,
  type MethodDefinition,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedHandleCall,
} from "@grpc/grpc-js";
import { CellService, TaskService } from "@diego/proto";
import { channelCredentials, methodPath, serverCredentials, type TlsFiles } from "@diego/kit";

export interface BbsProxyOptions {
  /** Default 127.0.0.1:0 (a free port). */
  listenAddress?: string;
  /** Mutual TLS on both sides: served with these files, and shown to the BBS as the client certificate. */
  tls?: TlsFiles;
}

const bytes = (b: Buffer) => b;

/**
 * A thin gRPC proxy in front of a BBS for the public API (TaskService, CellService): every call is
 * passed on as bytes, with its deadline, and its answer or error (code, message, trailers) comes back
 * as the BBS gave it. It records the methods called, and with `dropEvents` it swallows every
 * WatchTasks event (the stream stays open), to show that a client still follows tasks by polling.
 */
export class BbsProxy {
  /** Swallow every WatchTasks event from now on. */
  dropEvents = false;
  /** Methods called through the proxy, in order (`DesireTask`, `GetTask`…). */
  readonly calls: string[] = [];
  /** Open WatchTasks streams: cut() ends each as a broken connection would. */
  private readonly watches = new Set<() => void>();

  private constructor(
    private readonly server: Server,
    private readonly upstream: Client,
    readonly address: string,
  ) {}

  static async start(target: string, options: BbsProxyOptions = {}): Promise<BbsProxy> {
    const upstream = new Client(target, channelCredentials(options.tls));
    const server = new Server();
    let proxy: BbsProxy | undefined;
    for (const service of [TaskService, CellService] as DescService[]) {
      const definition: Record<string, MethodDefinition<Buffer, Buffer>> = {};
      const handlers: Record<string, UntypedHandleCall> = {};
      for (const method of service.methods) {
        const streaming = method.methodKind === "server_streaming";
        definition[method.localName] = {
          path: methodPath(service, method),
          requestStream: false,
          responseStream: streaming,
          requestSerialize: bytes,
          requestDeserialize: bytes,
          responseSerialize: bytes,
          responseDeserialize: bytes,
        };
        handlers[method.localName] = streaming
          ? (call: ServerWritableStream<Buffer, Buffer>) => proxy!.stream(service, method, call)
          : (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) =>
              proxy!.unary(service, method, call, callback);
      }
      server.addService(definition as ServiceDefinition, handlers);
    }
    const listen = options.listenAddress ?? "127.0.0.1:0";
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(listen, serverCredentials(options.tls), (err, p) => (err ? reject(err) : resolve(p))),
    );
    proxy = new BbsProxy(server, upstream, `${listen.slice(0, listen.lastIndexOf(":"))}:${port}`);
    return proxy;
  }

  /** Ends every open WatchTasks stream with UNAVAILABLE, as a dropped connection does; returns how many. */
  cutWatches(): number {
    const cuts = [...this.watches];
    for (const cut of cuts) cut();
    return cuts.length;
  }

  /** Open WatchTasks streams through the proxy. */
  get openWatches(): number {
    return this.watches.size;
  }

  async stop(): Promise<void> {
    this.server.forceShutdown();
    this.upstream.close();
  }

  private unary(
    service: DescService,
    method: DescMethod,
    call: ServerUnaryCall<Buffer, Buffer>,
    callback: sendUnaryData<Buffer>,
  ): void {
    this.calls.push(method.name);
    const up = this.upstream.makeUnaryRequest(
      methodPath(service, method),
      bytes,
      bytes,
      call.request,
      new Metadata(),
      { deadline: call.getDeadline() },
      (err, reply) => (err ? callback(err, null) : callback(null, reply)),
    );
    call.on("cancelled", () => up.cancel());
  }

  private stream(service: DescService, method: DescMethod, call: ServerWritableStream<Buffer, Buffer>): void {
    this.calls.push(method.name);
    const events = method.name === "WatchTasks";
    const up = this.upstream.makeServerStreamRequest(
      methodPath(service, method),
      bytes,
      bytes,
      call.request,
      new Metadata(),
      { deadline: call.getDeadline() },
    );
    up.on("data", (message: Buffer) => {
      if (!(events && this.dropEvents)) call.write(message);
    });
    let ended = false;
    const cut = () => {
      if (ended) return;
      ended = true;
      this.watches.delete(cut);
      up.cancel();
      call.emit("error", { code: status.UNAVAILABLE, details: "the proxy cut the stream" });
    };
    if (events) this.watches.add(cut);
    up.on("error", (err) => {
      this.watches.delete(cut);
      if (!ended) call.emit("error", err);
      ended = true;
    });
    up.on("end", () => {
      this.watches.delete(cut);
      if (!ended) call.end();
      ended = true;
    });
    call.on("cancelled", () => {
      this.watches.delete(cut);
      up.cancel();
    });
  }
}

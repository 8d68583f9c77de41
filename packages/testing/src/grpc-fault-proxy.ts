// A gRPC proxy in front of a real server that fails, delays or cuts chosen calls, or swallows a stream's
// messages, for fault injection in tests: the real part answers everything else, byte for byte.
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  Client,
  Metadata,
  Server,
  status,
  type MethodDefinition,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type ServiceDefinition,
  type UntypedHandleCall,
} from "@grpc/grpc-js";
import { channelCredentials, methodPath, serverCredentials, type TlsFiles } from "@diego/kit";

/**
 * A fault for one method (by its proto name, e.g. `ListCells`): fail with a status, and/or answer late; for a
 * server-streaming method, pass it on but swallow its messages.
 */
export interface Fault {
  /** Fail the call with this gRPC status code (e.g. `status.UNAVAILABLE`); unset: pass it on. */
  code?: status;
  message?: string;
  /** Wait this long before passing the call on (or failing it). */
  delayMs?: number;
  /** A stream passed on delivers none of its messages while this is set; it stays open (e.g. WatchTasks events lost). */
  dropMessages?: boolean;
}

export interface GrpcFaultProxyOptions {
  /** Default 127.0.0.1:0 (a free port). */
  listenAddress?: string;
  /** Mutual TLS on both sides: served with these files, and shown to the target as the client certificate. */
  tls?: TlsFiles;
}

const bytes = (b: Buffer) => b;

/** What a call passed on is made of: its method's path, bytes both ways, its request as it came, its deadline. */
function passOn(
  service: DescService,
  method: DescMethod,
  call: ServerUnaryCall<Buffer, Buffer> | ServerWritableStream<Buffer, Buffer>,
) {
  return [
    methodPath(service, method),
    bytes,
    bytes,
    call.request,
    new Metadata(),
    { deadline: call.getDeadline() },
  ] as const;
}

/**
 * Passes every unary and server-streaming call of the given services to `target` as bytes, with its deadline;
 * the answer or error comes back as the server gave it. `fault(method, …)` makes chosen calls fail or wait, or
 * a stream's messages vanish; `cut(method)` ends the open streams of a method as a broken connection would;
 * `calls` counts the calls per method. Plaintext unless given `tls`. `retarget` points it at another server.
 */
export class GrpcFaultProxy {
  /** Calls received, per method name. */
  readonly calls = new Map<string, number>();
  private readonly faults = new Map<string, Fault>();
  /** Open streams per method name: each entry ends its stream with UNAVAILABLE. */
  private readonly streams = new Map<string, Set<() => void>>();
  private upstream: Client;
  private stopped = false;

  private constructor(
    private readonly server: Server,
    private target: string,
    readonly address: string,
    private readonly tls: TlsFiles | undefined,
  ) {
    this.upstream = new Client(target, channelCredentials(tls));
  }

  /** Starts a proxy for `services` in front of `target` (host:port). */
  static async start(
    target: string,
    services: readonly DescService[],
    options: GrpcFaultProxyOptions = {},
  ): Promise<GrpcFaultProxy> {
    const listenAddress = options.listenAddress ?? "127.0.0.1:0";
    const server = new Server();
    let proxy: GrpcFaultProxy | undefined;
    for (const service of services) {
      const definition: Record<string, MethodDefinition<Buffer, Buffer>> = {};
      const handlers: Record<string, UntypedHandleCall> = {};
      for (const method of service.methods) {
        const streaming = method.methodKind === "server_streaming";
        if (method.methodKind !== "unary" && !streaming) continue;
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
          ? (call: ServerWritableStream<Buffer, Buffer>) => void proxy!.stream(service, method, call)
          : (call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) =>
              void proxy!.unary(service, method, call, callback);
      }
      server.addService(definition as ServiceDefinition, handlers);
    }
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(listenAddress, serverCredentials(options.tls), (err, p) => (err ? reject(err) : resolve(p))),
    );
    const address = `${listenAddress.slice(0, listenAddress.lastIndexOf(":"))}:${port}`;
    proxy = new GrpcFaultProxy(server, target, address, options.tls);
    return proxy;
  }

  /** Sets (or with undefined clears) the fault of a method. */
  fault(method: string, fault: Fault | undefined): void {
    if (fault) this.faults.set(method, fault);
    else this.faults.delete(method);
  }

  /** Clears every fault. */
  heal(): void {
    this.faults.clear();
  }

  count(method: string): number {
    return this.calls.get(method) ?? 0;
  }

  /** Open streams of a method (e.g. `WatchTasks`) through the proxy. */
  open(method: string): number {
    return this.streams.get(method)?.size ?? 0;
  }

  /** Ends every open stream of the method with UNAVAILABLE, as a dropped connection does; returns how many. */
  cut(method: string): number {
    const cuts = [...(this.streams.get(method) ?? [])];
    for (const cut of cuts) cut();
    return cuts.length;
  }

  /** Points the proxy at another server from the next call on. */
  retarget(target: string): void {
    if (target === this.target) return;
    this.upstream.close();
    this.target = target;
    this.upstream = new Client(target, channelCredentials(this.tls));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.server.forceShutdown();
    this.upstream.close();
  }

  /** Applies the method's fault: returns the error to answer with, if any. */
  private async before(method: DescMethod): Promise<{ code: status; details: string } | undefined> {
    this.calls.set(method.name, this.count(method.name) + 1);
    const fault = this.faults.get(method.name);
    if (fault?.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (this.stopped) return { code: status.UNAVAILABLE, details: "the proxy stopped" };
    if (fault?.code === undefined) return undefined;
    return { code: fault.code, details: fault.message ?? `fault injected on ${method.name}` };
  }

  private async unary(
    service: DescService,
    method: DescMethod,
    call: ServerUnaryCall<Buffer, Buffer>,
    callback: sendUnaryData<Buffer>,
  ): Promise<void> {
    const error = await this.before(method);
    if (error) return callback(error, null);
    const up = this.upstream.makeUnaryRequest(...passOn(service, method, call), (err, reply) =>
      err ? callback(err, null) : callback(null, reply),
    );
    call.on("cancelled", () => up.cancel());
  }

  private async stream(service: DescService, method: DescMethod, call: ServerWritableStream<Buffer, Buffer>) {
    const error = await this.before(method);
    if (error) return call.emit("error", error);
    const up = this.upstream.makeServerStreamRequest(...passOn(service, method, call));
    let ended = false;
    const open = this.streams.get(method.name) ?? new Set<() => void>();
    this.streams.set(method.name, open);
    const cut = () => {
      open.delete(cut);
      if (ended) return;
      ended = true;
      up.cancel();
      call.emit("error", { code: status.UNAVAILABLE, details: "the proxy cut the stream" });
    };
    open.add(cut);
    up.on("data", (message: Buffer) => {
      if (!this.faults.get(method.name)?.dropMessages) call.write(message);
    });
    up.on("error", (err) => {
      open.delete(cut);
      if (!ended) call.emit("error", err);
      ended = true;
    });
    up.on("end", () => {
      open.delete(cut);
      if (!ended) call.end();
      ended = true;
    });
    call.on("cancelled", () => {
      open.delete(cut);
      up.cancel();
    });
  }
}

import { create, toBinary, type DescFile, type DescMethod, type DescService } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import {
  Server,
  status as Status,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
  type UntypedHandleCall,
} from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { HealthImplementation, type ServingStatus } from "grpc-health-check";
import type { Logger } from "pino";
import { AUTHORIZATION, type AuthorizationTable } from "../authz/authorization-table.js";
import { authorize } from "../authz/authorize.js";
import { identityOfCertificate, type Identity } from "../authz/identity.js";
import { serverCredentials, type TlsFiles } from "./credentials.js";
import { RequestDecodeFailure } from "./request-decode-failure.js";
import { SendBudget } from "./send-budget.js";
import { encodeOnce, grpcServerServiceDefinition, methodPath } from "./service-definition.js";
import { toStatus } from "./status.js";
import type { CallContext, GenServiceMethods, ServiceImpl } from "./types.js";

/** Called once per finished RPC; kit/metrics uses it for request counters and latency histograms. */
export type CallObserver = (method: string, code: Status, seconds: number) => void;

export interface GrpcServerOptions {
  logger: Logger;
  tls?: TlsFiles;
  observe?: CallObserver;
  /**
   * Under mutual TLS every call is checked against this table before its handler runs (default: the
   * system's AUTHORIZATION table). Without TLS there are no identities and nothing is checked.
   */
  authorization?: AuthorizationTable;
  /** Allows plaintext on an address that is not loopback (logs a warning); refused without it. */
  insecure?: boolean;
  /** The largest request message taken, in bytes (default DEFAULT_MAX_RECEIVE_BYTES); larger is RESOURCE_EXHAUSTED. */
  maxReceiveBytes?: number;
  /** Bytes all server streams may have written and not yet sent (default DEFAULT_SEND_BUDGET_BYTES; see SendBudget). */
  sendBudgetBytes?: number;
}

/** The default send budget of a server's streams: 32 MiB (docs/limits.md). */
export const DEFAULT_SEND_BUDGET_BYTES = 32 * 1024 * 1024;

/** The default largest request message a server takes: 4 MiB, gRPC's own default (docs/limits.md). */
export const DEFAULT_MAX_RECEIVE_BYTES = 4 * 1024 * 1024;

/**
 * A grpc-js server for protobuf-es services with health checks (grpc.health.v1) and server
 * reflection for every service added. Handlers throw DiegoError; status mapping happens here.
 */
export class GrpcServer {
  private readonly server: Server;
  private readonly health = new HealthImplementation({ "": "NOT_SERVING" });
  private readonly services: DescService[] = [];
  private boundPort = 0;
  private readonly sendBudget: SendBudget;

  constructor(private readonly options: GrpcServerOptions) {
    this.sendBudget = new SendBudget(options.sendBudgetBytes ?? DEFAULT_SEND_BUDGET_BYTES);
    this.server = new Server({
      "grpc.max_receive_message_length": options.maxReceiveBytes ?? DEFAULT_MAX_RECEIVE_BYTES,
    });
    this.health.addToServer(this.server);
  }

  add<S extends GenServiceMethods>(service: GenService<S>, impl: ServiceImpl<S>): this {
    const handlers: Record<string, UntypedHandleCall> = {};
    for (const method of service.methods) {
      const handler = (impl as Record<string, unknown>)[method.localName];
      if (typeof handler !== "function") throw new Error(`no handler for ${service.typeName}.${method.name}`);
      handlers[method.localName] =
        method.methodKind === "server_streaming"
          ? this.streamHandler(service, method, handler as never)
          : this.unaryHandler(service, method, handler as never);
    }
    this.server.addService(grpcServerServiceDefinition(service), handlers);
    this.services.push(service);
    this.health.setStatus(service.typeName, "NOT_SERVING");
    return this;
  }

  /** Binds `host:port` (port 0 picks a free one), marks every service SERVING and returns the port. */
  async listen(address: string): Promise<number> {
    if (!this.options.tls) {
      if (!isLoopbackAddress(address) && !this.options.insecure)
        throw new Error(
          `refusing plaintext gRPC on ${address}, which is not a loopback address: give --tls-ca-file, --tls-cert-file and --tls-key-file, or --insecure`,
        );
      if (!isLoopbackAddress(address))
        this.options.logger.warn(
          { address },
          "gRPC without TLS on a non-loopback address (--insecure): any caller may call any RPC",
        );
    }
    new ReflectionService(reflectionPackage(this.services)).addToServer(this.server);
    this.boundPort = await new Promise<number>((resolve, reject) => {
      this.server.bindAsync(address, serverCredentials(this.options.tls), (err, port) =>
        err ? reject(err) : resolve(port),
      );
    });
    this.setServing(true);
    return this.boundPort;
  }

  get port(): number {
    return this.boundPort;
  }

  /** Flips the health status of the server and every service (readiness). */
  setServing(serving: boolean): void {
    const status: ServingStatus = serving ? "SERVING" : "NOT_SERVING";
    this.health.setStatus("", status);
    for (const s of this.services) this.health.setStatus(s.typeName, status);
  }

  /** Stops taking calls, lets running ones finish for up to graceMs, then cuts them off. */
  async shutdown(graceMs = 5_000): Promise<void> {
    this.setServing(false);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      timer.unref();
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private context(call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>, path: string) {
    return new LazyCallContext(call, path, this.options.tls ? identityOf(call) : undefined);
  }

  /**
   * The one place where calls are authorized (mutual TLS only): throws PERMISSION_DENIED. A request
   * that did not decode is refused first, with INVALID_ARGUMENT.
   */
  private authorize(path: string, request: unknown, context: LazyCallContext): void {
    if (request instanceof RequestDecodeFailure) throw request.error;
    if (!this.options.tls) return;
    const denial = authorize(this.options.authorization ?? AUTHORIZATION, path, request, context.identity);
    if (denial) throw denial;
  }

  private unaryHandler(
    service: DescService,
    method: DescMethod,
    handler: (req: unknown, ctx: CallContext) => Promise<unknown> | unknown,
  ): UntypedHandleCall {
    const path = methodPath(service, method);
    return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const started = process.hrtime.bigint();
      const context = this.context(call, path);
      Promise.resolve()
        .then(() => {
          this.authorize(path, call.request, context);
          return handler(call.request, context);
        })
        .then(
          (result) => {
            context.finish();
            this.observe(path, Status.OK, started);
            callback(null, create(method.output, result as never));
          },
          (err: unknown) => {
            context.finish();
            const st = toStatus(err);
            this.report(path, st.code ?? Status.INTERNAL, err);
            this.observe(path, st.code ?? Status.INTERNAL, started);
            callback(st, null);
          },
        );
    };
  }

  private streamHandler(
    service: DescService,
    method: DescMethod,
    handler: (req: unknown, ctx: CallContext) => AsyncIterable<unknown>,
  ): UntypedHandleCall {
    const path = methodPath(service, method);
    return (call: ServerWritableStream<unknown, unknown>) => {
      const started = process.hrtime.bigint();
      const context = this.context(call, path);
      const signal = context.signal;
      const run = async () => {
        this.authorize(path, call.request, context);
        for await (const item of handler(call.request, context)) {
          if (signal.aborted) break;
          // One message in flight per stream (the next is written once grpc-js has handed this one on), and
          // all streams within the server's send budget: a reader that does not read holds one message, and
          // a fan-out to thousands of readers holds at most the budget at once.
          const bytes = encodeOnce(method.output, create(method.output, item as never));
          const release = await this.sendBudget.acquire(bytes.length, signal);
          if (signal.aborted) break;
          await new Promise<void>((resolve) => {
            const done = () => {
              signal.removeEventListener("abort", done);
              release();
              resolve();
            };
            signal.addEventListener("abort", done);
            call.write(bytes, done);
          });
        }
      };
      run().then(
        () => {
          context.finish();
          this.observe(path, Status.OK, started);
          if (!signal.aborted) call.end();
        },
        (err: unknown) => {
          context.finish();
          const st = toStatus(err);
          this.report(path, st.code ?? Status.INTERNAL, err);
          this.observe(path, st.code ?? Status.INTERNAL, started);
          if (!signal.aborted) call.emit("error", st);
        },
      );
    };
  }

  private observe(path: string, code: Status, started: bigint): void {
    this.options.observe?.(path, code, Number(process.hrtime.bigint() - started) / 1e9);
  }

  private report(path: string, code: Status, err: unknown): void {
    if (code === Status.INTERNAL || code === Status.UNKNOWN)
      this.options.logger.error({ err, method: path }, "rpc failed");
    else this.options.logger.debug({ method: path, code, message: (err as Error).message }, "rpc refused");
  }
}

type AnyServerCall = ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>;

/**
 * The CallContext of one call. Its abort signal is made only when a handler asks for it: most unary
 * handlers never do, and an AbortController plus a listener on every call cost measurable time.
 */
class LazyCallContext implements CallContext {
  private controller?: AbortController;
  private finished = false;
  private readonly onCancelled = () => {
    if (!this.finished) this.controller?.abort();
  };

  constructor(
    private readonly call: AnyServerCall,
    readonly method: string,
    readonly identity: Identity | undefined,
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.call.cancelled) this.controller.abort();
      // grpc-js also emits "cancelled" once a finished call's stream closes: a finished call is not aborted.
      else this.call.once("cancelled", this.onCancelled);
    }
    return this.controller.signal;
  }

  get metadata() {
    return this.call.metadata;
  }

  get peer(): string {
    return this.call.getPeer();
  }

  get peerCommonName(): string | undefined {
    return commonName(this.call);
  }

  /** The handler is done: a later "cancelled" no longer aborts its signal. */
  finish(): void {
    this.finished = true;
    if (this.controller) this.call.removeListener("cancelled", this.onCancelled);
  }
}

function commonName(
  call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>,
): string | undefined {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  const cn = cert?.subject?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

const identities = new WeakMap<object, Identity | null>();

/** The caller's identity from its certificate, parsed once per certificate object. */
function identityOf(call: AnyServerCall): Identity | undefined {
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  if (!cert) return undefined;
  let identity = identities.get(cert);
  if (identity === undefined) identities.set(cert, (identity = identityOfCertificate(cert) ?? null));
  return identity ?? undefined;
}

/** `127.0.0.1:8889`, `[::1]:0`, `localhost:1800`: plaintext is allowed only on these. */
export function isLoopbackAddress(address: string): boolean {
  const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[|\]$/g, "");
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** A proto-loader-shaped package definition that carries the file descriptors of the services, for reflection. */
function reflectionPackage(services: DescService[]) {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(visit);
  };
  services.forEach((s) => visit(s.file));
  const fileDescriptorProtos = [...files.values()].map((f) =>
    Buffer.from(toBinary(FileDescriptorProtoSchema, f.proto)),
  );
  return { files: { format: "Protocol Buffer 3 FileDescriptorProto", fileDescriptorProtos } } as never;
}

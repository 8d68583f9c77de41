import { create, type DescMethod } from "@bufbuild/protobuf";
import type { GenService } from "@bufbuild/protobuf/codegenv2";
import { Client, Metadata, type ClientReadableStream, type MethodDefinition, type ServiceError } from "@grpc/grpc-js";
import { channelCredentials, type TlsFiles } from "./credentials.js";
import { failoverClient, splitAddresses } from "./failover-client.js";
import { grpcMethodDefinition } from "./service-definition.js";
import { fromServiceError } from "./status.js";
import type { CallOptions, GenServiceMethods, ServiceClient } from "./types.js";

export interface ClientOptions {
  tls?: TlsFiles;
  /** Deadline of unary calls without their own; default 10 s. Streams have none unless given. */
  defaultTimeoutMs?: number;
  /** TLS server name to verify when it differs from the address host. */
  serverName?: string;
}

/**
 * A typed client of one protobuf-es service at `address` (host:port), or at several servers that share
 * their state (`host:port,host:port`), failing over between them (see failoverClient).
 */
export function createClient<S extends GenServiceMethods>(
  service: GenService<S>,
  address: string,
  options: ClientOptions = {},
): ServiceClient<S> {
  const addresses = splitAddresses(address);
  if (addresses.length > 1) {
    const clients = addresses.map((a) => createClient(service, a, options));
    return failoverClient(service.methods, addresses, clients);
  }
  const channelOptions: Record<string, string | number> = {
    "grpc.keepalive_time_ms": 30_000,
    "grpc.max_receive_message_length": 64 * 1024 * 1024,
    // grpc-js backs reconnects off up to 120 s: after an outage of the other side a channel would stay
    // down long after it is back (a cell's heartbeat past its TTL). Cap it at 2 s (docs/reliability.md).
    "grpc.initial_reconnect_backoff_ms": 250,
    "grpc.max_reconnect_backoff_ms": 2_000,
  };
  if (options.serverName) channelOptions["grpc.ssl_target_name_override"] = options.serverName;
  const client = new Client(address, channelCredentials(options.tls), channelOptions);
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 10_000;
  const out: Record<string, unknown> = { close: () => client.close() };
  for (const method of service.methods) {
    const def = grpcMethodDefinition(service, method);
    out[method.localName] =
      method.methodKind === "server_streaming"
        ? (req: unknown, opts?: CallOptions) => serverStream(client, def, method, req, opts)
        : (req: unknown, opts?: CallOptions) => unary(client, def, method, req, opts, defaultTimeoutMs);
  }
  return out as ServiceClient<S>;
}

function deadline(timeoutMs: number | undefined): Date | undefined {
  return timeoutMs === undefined ? undefined : new Date(Date.now() + timeoutMs);
}

function unary(
  client: Client,
  def: MethodDefinition<unknown, unknown>,
  method: DescMethod,
  req: unknown,
  opts: CallOptions | undefined,
  defaultTimeoutMs: number,
): Promise<unknown> {
  const message = create(method.input, req as never);
  return new Promise((resolve, reject) => {
    opts?.signal?.throwIfAborted();
    const call = client.makeUnaryRequest(
      def.path,
      def.requestSerialize,
      def.responseDeserialize,
      message,
      opts?.metadata ?? new Metadata(),
      { deadline: deadline(opts?.timeoutMs ?? defaultTimeoutMs) },
      (err: ServiceError | null, value?: unknown) => {
        opts?.signal?.removeEventListener("abort", cancel);
        if (err) reject(fromServiceError(err));
        else resolve(value);
      },
    );
    const cancel = () => call.cancel();
    opts?.signal?.addEventListener("abort", cancel, { once: true });
  });
}

async function* serverStream(
  client: Client,
  def: MethodDefinition<unknown, unknown>,
  method: DescMethod,
  req: unknown,
  opts: CallOptions | undefined,
): AsyncGenerator<unknown> {
  const message = create(method.input, req as never);
  opts?.signal?.throwIfAborted();
  const call: ClientReadableStream<unknown> = client.makeServerStreamRequest(
    def.path,
    def.requestSerialize,
    def.responseDeserialize,
    message,
    opts?.metadata ?? new Metadata(),
    { deadline: deadline(opts?.timeoutMs) },
  );
  const cancel = () => call.cancel();
  opts?.signal?.addEventListener("abort", cancel, { once: true });
  try {
    for await (const item of call) yield item;
  } catch (err) {
    throw fromServiceError(err as ServiceError);
  } finally {
    opts?.signal?.removeEventListener("abort", cancel);
    call.cancel();
  }
}

import type { DescMessage, MessageInitShape, MessageShape } from "@bufbuild/protobuf";
import type { GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { Metadata } from "@grpc/grpc-js";
import type { Identity } from "../authz/identity.js";

export type { GenServiceMethods };

/** What a handler knows of its call besides the request. */
export interface CallContext {
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
  metadata: Metadata;
  peer: string;
  /** `/pkg.Service/Method` */
  method: string;
  /** Subject CN of the client certificate under mutual TLS, else undefined. */
  peerCommonName?: string;
  /**
   * The caller's role and id from its certificate under mutual TLS (docs/security.md); undefined
   * without TLS, where callers are not authenticated and every RPC is open.
   */
  identity?: Identity;
}

type Unary<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: CallContext,
) => Promise<MessageInitShape<O>> | MessageInitShape<O>;

type ServerStream<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
  context: CallContext,
) => AsyncIterable<MessageInitShape<O>>;

type MethodImpl<M> = M extends {
  methodKind: "unary";
  input: infer I extends DescMessage;
  output: infer O extends DescMessage;
}
  ? Unary<I, O>
  : M extends {
        methodKind: "server_streaming";
        input: infer I extends DescMessage;
        output: infer O extends DescMessage;
      }
    ? ServerStream<I, O>
    : never;

/** The handlers of a protobuf-es service, one per RPC, keyed by the method's local name (desireTask…). */
export type ServiceImpl<S extends GenServiceMethods> = { [K in keyof S]: MethodImpl<S[K]> };

export interface CallOptions {
  /** Deadline for this call; unary calls default to the client's default timeout. */
  timeoutMs?: number;
  signal?: AbortSignal;
  metadata?: Metadata;
}

type ClientMethod<M> = M extends {
  methodKind: "unary";
  input: infer I extends DescMessage;
  output: infer O extends DescMessage;
}
  ? (request: MessageInitShape<I>, options?: CallOptions) => Promise<MessageShape<O>>
  : M extends {
        methodKind: "server_streaming";
        input: infer I extends DescMessage;
        output: infer O extends DescMessage;
      }
    ? (request: MessageInitShape<I>, options?: CallOptions) => AsyncIterable<MessageShape<O>>
    : never;

/** A typed client: every RPC as a method; errors are DiegoError. */
export type ServiceClient<S extends GenServiceMethods> = { [K in keyof S]: ClientMethod<S[K]> } & {
  /** Closes the channel. */
  close(): void;
};

import { fromBinary, toBinary, type DescMessage, type DescMethod, type DescService } from "@bufbuild/protobuf";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import { decodeFailureError, RequestDecodeFailure } from "./request-decode-failure.js";

/** A grpc-js service definition for a protobuf-es service: `/pkg.Service/Method`, binary protobuf on the wire. */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) definition[method.localName] = grpcMethodDefinition(service, method);
  return definition as ServiceDefinition;
}

/**
 * The server's side of a service definition: a request that does not decode becomes a
 * RequestDecodeFailure (answered INVALID_ARGUMENT by the server) instead of grpc-js's INTERNAL.
 */
export function grpcServerServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    const decode = deserializer(method.input);
    definition[method.localName] = {
      ...grpcMethodDefinition(service, method),
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (err) {
          return new RequestDecodeFailure(decodeFailureError(method.input.typeName, err));
        }
      },
    };
  }
  return definition as ServiceDefinition;
}

export function grpcMethodDefinition(service: DescService, method: DescMethod): MethodDefinition<unknown, unknown> {
  return {
    path: methodPath(service, method),
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: serializer(method.input),
    requestDeserialize: deserializer(method.input),
    responseSerialize:
      method.methodKind === "server_streaming" ? streamSerializer(method.output) : serializer(method.output),
    responseDeserialize: deserializer(method.output),
    originalName: method.name,
  };
}

export function methodPath(service: DescService, method: DescMethod): string {
  return `/${service.typeName}/${method.name}`;
}

function serializer(schema: DescMessage) {
  return (message: unknown) => Buffer.from(toBinary(schema, message as never));
}

const encodedOnce = new WeakMap<object, Buffer>();

/**
 * The bytes of a response message, encoded once per message object however many streams send it: an
 * event fanned out to every WatchTasks subscriber is the same object, so its bytes are shared.
 */
export function encodeOnce(schema: DescMessage, message: object): Buffer {
  let bytes = encodedOnce.get(message);
  if (!bytes) encodedOnce.set(message, (bytes = Buffer.from(toBinary(schema, message as never))));
  return bytes;
}

/** A streamed response arrives encoded (encodeOnce) from the server's stream writer. */
function streamSerializer(schema: DescMessage) {
  return (message: unknown) => (Buffer.isBuffer(message) ? message : Buffer.from(toBinary(schema, message as never)));
}

function deserializer(schema: DescMessage) {
  return (bytes: Buffer) => fromBinary(schema, bytes);
}

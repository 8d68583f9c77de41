import { DiegoError, MAX_ACTION_DEPTH } from "@diego/models";

/**
 * What the server's deserializer hands the call instead of a request it could not decode. grpc-js
 * would answer a throwing deserializer with INTERNAL; the server turns this into INVALID_ARGUMENT
 * before authorization or any handler sees the call.
 */
export class RequestDecodeFailure {
  constructor(readonly error: DiegoError) {}
}

/** The INVALID_ARGUMENT a user can act on for a request of type `typeName` that failed to decode. Pure. */
export function decodeFailureError(typeName: string, cause: unknown): DiegoError {
  const reason = cause instanceof Error ? cause.message : String(cause);
  const field = { field: "(request)", message: "" };
  if (/recursion depth/i.test(reason)) {
    field.field = "action";
    field.message = `is too deep: messages nest more than the decoder's limit of 100 (an action tree may nest at most ${MAX_ACTION_DEPTH} levels)`;
  } else if (/utf-?8/i.test(reason)) {
    field.message = `is not a valid ${typeName}: a string field is not valid UTF-8`;
  } else {
    field.message = `is not a valid ${typeName} protobuf message (${reason})`;
  }
  return new DiegoError("INVALID_ARGUMENT", `invalid request: ${field.field}: ${field.message}`, [field]);
}

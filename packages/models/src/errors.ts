/**
 * The one error type of the system. Every service throws DiegoError; the gRPC layer maps its code to a
 * gRPC status in exactly one place (kit/grpc/status.ts) and back again on the client side.
 */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "ABORTED"
  | "RESOURCE_EXHAUSTED"
  | "UNAVAILABLE"
  | "DEADLINE_EXCEEDED"
  | "CANCELLED"
  | "UNAUTHENTICATED"
  | "PERMISSION_DENIED"
  | "UNIMPLEMENTED"
  | "INTERNAL"
  | "UNKNOWN";

/** One bad field of a request: the snake_case path of the field and what is wrong with it. */
export interface FieldViolation {
  field: string;
  message: string;
}

export class DiegoError extends Error {
  override readonly name = "DiegoError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** For INVALID_ARGUMENT: every bad field. */
    readonly violations: readonly FieldViolation[] = [],
  ) {
    super(message);
  }

  static is(err: unknown, code?: ErrorCode): err is DiegoError {
    return err instanceof DiegoError && (code === undefined || err.code === code);
  }
}

export function invalidArgument(violations: readonly FieldViolation[]): DiegoError {
  const text = violations.map((v) => `${v.field}: ${v.message}`).join("; ");
  return new DiegoError("INVALID_ARGUMENT", `invalid request: ${text}`, violations);
}

export function notFound(what: string): DiegoError {
  return new DiegoError("NOT_FOUND", `${what} not found`);
}

export function taskNotFound(taskGuid: string): DiegoError {
  return notFound(`task ${JSON.stringify(taskGuid)}`);
}

export function alreadyExists(what: string): DiegoError {
  return new DiegoError("ALREADY_EXISTS", `${what} already exists`);
}

export function failedPrecondition(message: string): DiegoError {
  return new DiegoError("FAILED_PRECONDITION", message);
}

export function unavailable(message: string): DiegoError {
  return new DiegoError("UNAVAILABLE", message);
}

export function internal(message: string): DiegoError {
  return new DiegoError("INTERNAL", message);
}

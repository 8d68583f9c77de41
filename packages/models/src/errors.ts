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
  | "OUT_OF_RANGE"
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

/**
 * The codes whose answer is final: the same request will be refused again however often it is sent
 * (the task is not there, not in a state that allows it, not the caller's, or the request is bad).
 */
const TERMINAL_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "FAILED_PRECONDITION",
  "PERMISSION_DENIED",
  "UNIMPLEMENTED",
]);

/** A RESOURCE_EXHAUSTED about the size of the request (ours or gRPC's own) rather than about load. */
const SIZE_REFUSAL = /\bthe limit is\b|larger than max|too large/i;

/**
 * The one answer to "did the other side say no for good?". True for a refusal that no retry can
 * change (see TERMINAL_CODES, and RESOURCE_EXHAUSTED about a request's size); false for everything
 * that can pass: UNAVAILABLE, DEADLINE_EXCEEDED, ABORTED, CANCELLED, RESOURCE_EXHAUSTED from load,
 * INTERNAL/UNKNOWN, UNAUTHENTICATED (credentials can be fixed without changing the request), and
 * anything that is not a DiegoError (a socket error, a local timeout).
 */
export function isTerminal(err: unknown): boolean {
  if (!DiegoError.is(err)) return false;
  if (TERMINAL_CODES.has(err.code)) return true;
  return err.code === "RESOURCE_EXHAUSTED" && SIZE_REFUSAL.test(err.message);
}

/** The complement of isTerminal: sending the same request again later may succeed. */
export function isRetryable(err: unknown): boolean {
  return !isTerminal(err);
}

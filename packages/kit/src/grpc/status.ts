import { Metadata, status as Status, type ServiceError, type StatusObject } from "@grpc/grpc-js";
import { DiegoError, type ErrorCode, type FieldViolation } from "@diego/models";

/** The one place where error codes meet gRPC status codes, in both directions. */
const TO_GRPC: Record<ErrorCode, Status> = {
  INVALID_ARGUMENT: Status.INVALID_ARGUMENT,
  NOT_FOUND: Status.NOT_FOUND,
  ALREADY_EXISTS: Status.ALREADY_EXISTS,
  FAILED_PRECONDITION: Status.FAILED_PRECONDITION,
  ABORTED: Status.ABORTED,
  OUT_OF_RANGE: Status.OUT_OF_RANGE,
  RESOURCE_EXHAUSTED: Status.RESOURCE_EXHAUSTED,
  UNAVAILABLE: Status.UNAVAILABLE,
  DEADLINE_EXCEEDED: Status.DEADLINE_EXCEEDED,
  CANCELLED: Status.CANCELLED,
  UNAUTHENTICATED: Status.UNAUTHENTICATED,
  PERMISSION_DENIED: Status.PERMISSION_DENIED,
  UNIMPLEMENTED: Status.UNIMPLEMENTED,
  INTERNAL: Status.INTERNAL,
  UNKNOWN: Status.UNKNOWN,
};

const FROM_GRPC = new Map<number, ErrorCode>(Object.entries(TO_GRPC).map(([code, grpc]) => [grpc, code as ErrorCode]));

/** Trailer carrying the bad fields of an INVALID_ARGUMENT as JSON [{field, message}]. */
const VIOLATIONS_KEY = "diego-field-violations";

/** Turns anything thrown by a handler into a gRPC status; unknown errors become INTERNAL. */
export function toStatus(err: unknown): Partial<StatusObject> {
  const metadata = new Metadata();
  if (err instanceof DiegoError) {
    if (err.violations.length) metadata.set(VIOLATIONS_KEY, JSON.stringify(err.violations));
    return { code: TO_GRPC[err.code], details: err.message, metadata };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { code: Status.INTERNAL, details: message, metadata };
}

/** Turns a gRPC error seen by a client into the DiegoError the server threw. */
export function fromServiceError(err: ServiceError | Partial<StatusObject>): DiegoError {
  const code = FROM_GRPC.get(err.code ?? Status.UNKNOWN) ?? "UNKNOWN";
  const raw = err.metadata?.get(VIOLATIONS_KEY)[0];
  let violations: FieldViolation[] = [];
  if (typeof raw === "string") {
    try {
      violations = JSON.parse(raw) as FieldViolation[];
    } catch {
      violations = [];
    }
  }
  return new DiegoError(
    code,
    err.details || ("message" in err && typeof err.message === "string" ? err.message : code),
    violations,
  );
}

export function grpcCode(code: ErrorCode): Status {
  return TO_GRPC[code];
}

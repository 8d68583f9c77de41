import { DiegoError } from "@diego/models";

/** The exit codes of `diego`, documented in its README and `--help`. */
export const ExitCode = {
  ok: 0,
  /** `run`: the task completed with failed = true (its failure_reason is on stderr). */
  taskFailed: 1,
  /** Bad usage or a bad task file / argument (INVALID_ARGUMENT). */
  usage: 2,
  /** The BBS could not be reached (UNAVAILABLE, DEADLINE_EXCEEDED), TLS refusals included. */
  unreachable: 3,
  /** No such task (NOT_FOUND). */
  notFound: 4,
  /** The task is not in a state that allows it, or exists already (FAILED_PRECONDITION, ALREADY_EXISTS). */
  conflict: 5,
  /** Any other error of the BBS or of the CLI. */
  other: 6,
  /** Interrupted by Ctrl-C. */
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    success
  1    run: the task failed (its failure_reason is printed on stderr)
  2    bad usage, bad task file or argument (the field is named)
  3    the BBS cannot be reached (address named), TLS refusal included
  4    no such task
  5    the task's state does not allow it, or the guid exists already
  6    any other error
  130  interrupted (Ctrl-C)`;

export function exitCodeFor(err: unknown): number {
  if (!(err instanceof DiegoError)) return ExitCode.other;
  switch (err.code) {
    case "INVALID_ARGUMENT":
      return ExitCode.usage;
    case "UNAVAILABLE":
    case "DEADLINE_EXCEEDED":
    case "UNAUTHENTICATED":
      return ExitCode.unreachable;
    case "NOT_FOUND":
      return ExitCode.notFound;
    case "FAILED_PRECONDITION":
    case "ALREADY_EXISTS":
    case "ABORTED":
      return ExitCode.conflict;
    case "CANCELLED":
      return ExitCode.interrupted;
    default:
      return ExitCode.other;
  }
}

import { DiegoError } from "@diego/models";
import type { Task } from "@diego/proto";

/** The exit codes of every command but `run`, documented in its README, docs/contract.md and `--help`. */
export const ExitCode = {
  ok: 0,
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

/**
 * The exit codes of `diego run`. Like `docker run`, it exits with the task's own exit status when its
 * run action exited non-zero, so its own codes sit apart: 121–125, below the statuses shells give
 * meaning to (126 cannot execute, 127 not found, 128+n killed by signal n), which pass through as
 * the task's. A task that exits 121–125 itself is told apart by `--json` (exit_status, failure_kind).
 */
export const RunExitCode = {
  ok: 0,
  /** Bad usage or a bad task file (INVALID_ARGUMENT). */
  usage: 121,
  /** The BBS could not be reached. */
  unreachable: 122,
  /** The guid exists already, or the task was deleted or taken before it completed. */
  conflict: 123,
  /** The task failed without a non-zero exit status of its own (placement, image, timeout, cancel, lost cell…). */
  taskFailed: 124,
  /** Any other error of the BBS or of the CLI. */
  other: 125,
  interrupted: 130,
} as const;

export const EXIT_CODES_HELP = `Exit codes (every command but run):
  0    success
  2    bad usage, bad task file or argument (the field is named)
  3    the BBS cannot be reached (address named), TLS refusal included
  4    no such task
  5    the task's state does not allow it, or the guid exists already
  6    any other error
  130  interrupted (Ctrl-C)

Exit codes of run (like docker run, the task's own status passes through):
  0        the task succeeded
  1-255    the task's run action exited with this status (exit_status)
  121      bad usage or task file
  122      the BBS cannot be reached
  123      the guid exists already, or the task was deleted before it completed
  124      the task failed without an exit status (see failure_kind: timed out, not placeable, image, ...)
  125      any other error
  130      interrupted (Ctrl-C); the task is cancelled`;

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

/** `run`'s code for an error of its own (the other commands' code, moved to 121–125). Pure. */
export function runExitCodeFor(err: unknown): number {
  switch (exitCodeFor(err)) {
    case ExitCode.usage:
      return RunExitCode.usage;
    case ExitCode.unreachable:
      return RunExitCode.unreachable;
    case ExitCode.notFound:
    case ExitCode.conflict:
      return RunExitCode.conflict;
    case ExitCode.interrupted:
      return RunExitCode.interrupted;
    default:
      return RunExitCode.other;
  }
}

/**
 * `run`'s code for a completed task: 0 when it succeeded; its exit_status when its run action exited
 * 1–255; 124 when it failed otherwise; 130 when this run's Ctrl-C cancelled it. Pure.
 */
export function runExitCodeOf(task: Pick<Task, "failed" | "exitStatus">, cancelledHere: boolean): number {
  if (!task.failed) return RunExitCode.ok;
  if (cancelledHere) return RunExitCode.interrupted;
  const status = task.exitStatus;
  return status !== undefined && status >= 1 && status <= 255 ? status : RunExitCode.taskFailed;
}

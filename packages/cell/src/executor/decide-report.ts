import { FailureReason } from "@diego/models";
import type { FailureKind } from "@diego/proto";

/** Why a runner was stopped from outside: cancelled by the client, gone from the BBS, its container vanished, the cell drains. */
export type StopReason = "cancelled" | "gone" | "missing" | "drain";

/** What a runner reports of its task (docs/outcomes.md): CompleteTask, RejectTask, or nothing. */
export type Outcome =
  | {
      kind: "complete";
      failed: boolean;
      reason: string;
      result: string;
      exitStatus?: number;
      failureKind?: FailureKind;
    }
  | { kind: "reject"; reason: string }
  | { kind: "none" };

/** What running the task gave: its outcome, or the error it failed with unexpectedly. */
export type Produced = Outcome | { kind: "error"; message: string };

/**
 * What to report once the task's work has ended (docs/outcomes.md), from why the runner was stopped
 * (if it was) and what the work gave. Pure.
 *
 * - cancelled or gone: nothing (the BBS has finished or deleted the task itself);
 * - its container vanished: failed `task container does not exist`;
 * - the cell drains: a completion becomes failed `cell disappeared before completion` (a rejection or
 *   nothing stays so);
 * - not stopped: the outcome as produced; an unexpected error fails the task with its message.
 */
export function decideReport(stopReason: StopReason | undefined, produced: Produced): Outcome {
  const outcome: Outcome =
    produced.kind === "error" ? { kind: "complete", failed: true, reason: produced.message, result: "" } : produced;
  switch (stopReason) {
    case "cancelled":
    case "gone":
      return { kind: "none" };
    case "missing":
      return { kind: "complete", failed: true, reason: FailureReason.containerMissing, result: "" };
    case "drain":
      return outcome.kind === "complete"
        ? { kind: "complete", failed: true, reason: FailureReason.cellDisappeared, result: "" }
        : outcome;
    default:
      return outcome;
  }
}

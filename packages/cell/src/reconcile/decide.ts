/**
 * The cell's reconcile decision (docs/architecture.md, resolve) as one pure table: what this cell knows of a
 * task guid (its own runner and container) against what the BBS says, to what to do.
 */

/** The cell's side of one task guid. */
export type CellSide =
  /** No runner and no container. */
  | "none"
  /** Capacity reserved, the claim (StartTask) failed for a passing reason and waits to be retried. */
  | "reserved"
  /** The claim is in flight. */
  | "claiming"
  /** Claimed; the image and container are being prepared. */
  | "starting"
  /** The container runs the action tree. */
  | "running"
  /** The runner is reporting the result and removing its container itself. */
  | "finishing"
  /** No runner: the task's outcome is journaled and owed to the BBS (its reporter retries until the BBS answers). */
  | "reporting"
  /** A container of this cell that no runner owns (left by a crash, or from before a restart). */
  | "orphan"
  /** The runner is past creating its container, but the container is gone. */
  | "lost";

/** The BBS's side: listed for this cell CLAIMED or RUNNING (active), COMPLETED or RESOLVING (finished), or not listed here. */
export type BbsSide = "absent" | "active" | "finished";

export type ReconcileAction =
  | "nothing"
  /** Retry StartTask and run the task if it is ours. */
  | "claim"
  /** Stop the runner and remove its container; no report (the task was cancelled, deleted or claimed elsewhere). */
  | "stop-runner"
  /** CompleteTask failed `task container does not exist`. */
  | "complete-missing"
  /** Stop the runner, which reports `task container does not exist`. */
  | "stop-and-complete-missing"
  /** CompleteTask failed `cell disappeared before completion` for a task this cell lost track of, then remove the container. */
  | "fail-orphan"
  /** Remove a container nobody owns. */
  | "remove-container"
  /** The BBS answers and still waits for the outcome: report it now rather than at the end of the backoff. */
  | "report-now"
  /** The BBS has finished or deleted the task: drop the journaled outcome unreported, remove any container. */
  | "forget-outcome";

export const DECISIONS: Record<CellSide, Record<BbsSide, ReconcileAction>> = {
  none: { absent: "nothing", active: "complete-missing", finished: "nothing" },
  reserved: { absent: "claim", active: "claim", finished: "stop-runner" },
  claiming: { absent: "nothing", active: "nothing", finished: "nothing" },
  starting: { absent: "stop-runner", active: "nothing", finished: "stop-runner" },
  running: { absent: "stop-runner", active: "nothing", finished: "stop-runner" },
  finishing: { absent: "nothing", active: "nothing", finished: "nothing" },
  reporting: { absent: "forget-outcome", active: "report-now", finished: "forget-outcome" },
  orphan: { absent: "remove-container", active: "fail-orphan", finished: "remove-container" },
  lost: { absent: "stop-runner", active: "stop-and-complete-missing", finished: "stop-runner" },
};

export function decide(cell: CellSide, bbs: BbsSide): ReconcileAction {
  return DECISIONS[cell][bbs];
}

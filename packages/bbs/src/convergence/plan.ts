import { TaskState } from "@diego/proto";

/** What the plan needs of a task (TaskEntry has it, without decoding the task). */
export interface TaskFacts {
  guid: string;
  state: TaskState;
  cellId: string;
  createdAtMs: number;
  updatedAtMs: number;
  firstCompletedAtMs: number;
  hasCallback: boolean;
}

export interface ConvergenceDurations {
  /** A RESOLVING task older than this goes back to COMPLETED; a COMPLETED one gets its callback again. */
  kickTaskDurationMs: number;
  /** A PENDING task older than this fails `not started within time limit`. */
  expirePendingTaskDurationMs: number;
  /** A COMPLETED (or RESOLVING) task unresolved this long after it first completed is deleted. */
  expireCompletedTaskDurationMs: number;
}

export interface ConvergencePlan {
  /** PENDING too long → COMPLETED failed `not started within time limit` (T7). */
  expirePending: string[];
  /** PENDING: send to the auctioneer again (every pass, so rejected tasks are retried promptly). */
  auction: string[];
  /** CLAIMED or RUNNING on a lost cell → COMPLETED failed `cell disappeared before completion` (T8). */
  cellLost: string[];
  /** RESOLVING for longer than kick_task_duration → COMPLETED (T11); its callback goes again at once. */
  demote: string[];
  /** COMPLETED or RESOLVING past expire_completed_task_duration → deleted (T12). */
  expireCompleted: string[];
  /** COMPLETED with a callback URL, unchanged for kick_task_duration → callback again. */
  callbacks: string[];
}

/**
 * One convergence pass as a pure function of (tasks, lost cells, now). `lostCells` are the cells
 * decideCellLoss declared lost (an absent cell may be held instead, see docs/reliability.md);
 * undefined means presence could not be read, and then no task is failed for a lost cell.
 */
export function planConvergence(
  tasks: Iterable<TaskFacts>,
  lostCells: ReadonlySet<string> | undefined,
  nowMs: number,
  d: ConvergenceDurations,
): ConvergencePlan {
  const plan: ConvergencePlan = {
    expirePending: [],
    auction: [],
    cellLost: [],
    demote: [],
    expireCompleted: [],
    callbacks: [],
  };
  const pendingCutoff = nowMs - d.expirePendingTaskDurationMs;
  const kickCutoff = nowMs - d.kickTaskDurationMs;
  const completedCutoff = nowMs - d.expireCompletedTaskDurationMs;
  for (const t of tasks) {
    switch (t.state) {
      case TaskState.PENDING:
        if (t.createdAtMs < pendingCutoff) plan.expirePending.push(t.guid);
        else plan.auction.push(t.guid);
        break;
      case TaskState.CLAIMED:
      case TaskState.RUNNING:
        if (lostCells?.has(t.cellId)) plan.cellLost.push(t.guid);
        break;
      case TaskState.RESOLVING:
        if (t.firstCompletedAtMs < completedCutoff) plan.expireCompleted.push(t.guid);
        else if (t.updatedAtMs < kickCutoff) plan.demote.push(t.guid);
        break;
      case TaskState.COMPLETED:
        if (t.firstCompletedAtMs < completedCutoff) plan.expireCompleted.push(t.guid);
        else if (t.hasCallback && t.updatedAtMs < kickCutoff) plan.callbacks.push(t.guid);
        break;
      default:
        break;
    }
  }
  return plan;
}

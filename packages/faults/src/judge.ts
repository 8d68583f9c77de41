/**
 * The judge of one fault case, pure: from what the receiver outside the cluster counted for each task
 * and the task records read back at the end, which tasks ran twice, which were lost and which failed
 * for a reason that is true. Nothing here is inferred from logs or timing.
 */

/** The task record as the BBS returned it at the end (undefined: the BBS has no such task). */
export interface FinalRecord {
  /** "COMPLETED", "RUNNING", ... (the TaskState name). */
  state: string;
  failed: boolean;
  failureReason: string;
  result: string;
  cellId: string;
}

/** What the receiver counted for one task: each run of its action calls `start` first and `done` last. */
export interface EffectCount {
  starts: number;
  dones: number;
}

export interface JudgedTask {
  guid: string;
  /** The result the task writes when its action runs to the end. */
  expectedResult: string;
  effects: EffectCount;
  record: FinalRecord | undefined;
}

/** What really happened in the case, the ground truth a failure reason is held against. */
export interface Truth {
  /**
   * Cells that really went away: killed, or silent (frozen, cut off) for longer than their presence
   * TTL. "cell disappeared before completion" (or a missing container) is true only of their tasks.
   */
  disappearedCells: ReadonlySet<string>;
}

export type Verdict =
  /** COMPLETED, not failed, with the result its action writes, and its action ran to the end. */
  | "completed"
  /** COMPLETED and failed, with a reason that is true. */
  | "failed-true"
  /** Anything else: no record, never finished, a wrong result, or a reason that is not true. */
  | "lost";

export interface TaskVerdict {
  guid: string;
  verdict: Verdict;
  /** The action ran more than once (the receiver saw more than one start). */
  ranTwice: boolean;
  /** Why: the failure reason, or what makes the task lost. */
  why: string;
}

export interface CaseSummary {
  tasks: number;
  completed: number;
  failedTrue: number;
  twice: number;
  lost: number;
  /** Failed for a true reason although the receiver saw the action run to the end (its outcome was dropped). */
  finishedThenFailed: number;
  verdicts: TaskVerdict[];
}

/** Failure reasons that are true when, and only when, the task's cell really went away. */
export const CELL_LOSS_REASONS: readonly string[] = [
  "cell disappeared before completion",
  "task container does not exist",
];

export function judgeTask(task: JudgedTask, truth: Truth): TaskVerdict {
  const { guid, record, effects } = task;
  const ranTwice = effects.starts > 1;
  const lost = (why: string): TaskVerdict => ({ guid, verdict: "lost", ranTwice, why });
  if (!record) return lost("the BBS has no record of it");
  if (record.state !== "COMPLETED") return lost(`still ${record.state}`);
  if (!record.failed) {
    if (effects.dones === 0) return lost("COMPLETED, but its action never ran to the end");
    if (record.result !== task.expectedResult) {
      return lost(`COMPLETED with result ${JSON.stringify(record.result)}, not ${JSON.stringify(task.expectedResult)}`);
    }
    return { guid, verdict: "completed", ranTwice, why: "" };
  }
  const reason = record.failureReason;
  if (CELL_LOSS_REASONS.includes(reason)) {
    if (truth.disappearedCells.has(record.cellId)) return { guid, verdict: "failed-true", ranTwice, why: reason };
    const where = record.cellId ? `its cell ${record.cellId} did not go away` : "it names no cell";
    return lost(`failed ${JSON.stringify(reason)}, but ${where}`);
  }
  // The workload's action cannot fail by itself (the receiver always answers), so no other reason is true.
  return lost(`failed ${JSON.stringify(reason)}`);
}

export function judgeCase(tasks: readonly JudgedTask[], truth: Truth): CaseSummary {
  const verdicts = tasks.map((t) => judgeTask(t, truth));
  return {
    tasks: tasks.length,
    completed: verdicts.filter((v) => v.verdict === "completed").length,
    failedTrue: verdicts.filter((v) => v.verdict === "failed-true").length,
    twice: verdicts.filter((v) => v.ranTwice).length,
    lost: verdicts.filter((v) => v.verdict === "lost").length,
    finishedThenFailed: verdicts.filter((v, i) => v.verdict === "failed-true" && tasks[i]!.effects.dones > 0).length,
    verdicts,
  };
}

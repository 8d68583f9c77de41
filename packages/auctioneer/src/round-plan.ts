import type { ScheduleResult } from "@diego/auction";
import { backoffDelay, type BackoffOptions } from "@diego/models";
import type { cellv1 } from "@diego/proto";
import type { TaskWork } from "./batcher.js";
import type { Refusal } from "./tracked-tasks.js";

/** What a cell said to its Perform: the work it refused (with reasons), or the call's error. */
export type PerformAnswer = { refused: readonly cellv1.FailedWork[] } | { error: string };

/** What the plan knows of a task held before this round. */
export interface HeldTask {
  /** Rounds this task was auctioned without being placed, before this one. */
  attempts: number;
  /** Cells that refused it at Perform, oldest first. */
  refusals: readonly Refusal[];
}

export interface RoundInput {
  schedule: ScheduleResult<TaskWork>;
  /** Per task guid of the batch, what was held of it before this round (absent: new this round). */
  held: ReadonlyMap<string, HeldTask>;
  /** Per cell id of `schedule.placements`, its Perform answer. */
  answers: ReadonlyMap<string, PerformAnswer>;
  /** Cells that may refuse a task before it is rejected. */
  maxCellRefusals: number;
  /** The wait of a task kept for capacity or for cells to answer, by its attempts. */
  backoff: BackoffOptions;
  nowMs: number;
  /** Uniform in [0, 1): the jitter of each wait (injected, so tests are exact). */
  random: () => number;
}

/** A rejection to send to the BBS: `permanent` when no live cell can ever run the task (the BBS fails it at once). */
export interface Rejection {
  taskGuid: string;
  reason: string;
  permanent: boolean;
}

/** Why a task is kept for another round. */
export type KeepCause = "refused" | "capacity" | "unreachable";

export interface Kept {
  taskGuid: string;
  cause: KeepCause;
  /** When it goes to auction again (ms). */
  retryAtMs: number;
  /** Its attempts after this round. */
  attempts: number;
  /** A refusal to record this round (it excludes that cell for the task). */
  refusal?: Refusal;
}

export interface RoundPlan {
  /** Tasks a cell accepted, by cell: the cache reserves them. */
  placed: { cellId: string; tasks: TaskWork[] }[];
  /** Rejections to send through the BBS. */
  reject: Rejection[];
  /** Tasks held for another round. */
  keep: Kept[];
  /** Cells whose cached state is wrong or doubtful (they refused work or Perform failed): fetch them again. */
  refresh: string[];
  /** When the next round is due for the kept tasks (Infinity when none). */
  nextRoundAtMs: number;
  /** Tasks that waited only because no cell answered (for the warning). */
  unreachable: number;
  /** Tasks a cell refused this round (Perform answer or error). */
  refused: number;
}

/**
 * The decisions of one auction round as a value (docs/architecture.md, auctioneer): given the schedule,
 * what each cell answered to its Perform and what was held of each task, it decides
 *
 * - **placed**: what a cell accepted;
 * - **refused at Perform** (a refusal, or the call's error: the cell may not have taken it): the cell is
 *   excluded for the task and fetched again, and the task goes again at once, to another cell; when
 *   `maxCellRefusals` cells have refused it, it is rejected (not permanent) with the last cell's reason;
 * - **permanent** failures (no live cell can ever run the task, as schedule() judges): rejected permanent,
 *   so the BBS fails the task at once;
 * - **insufficient** now: rejected with the last refusal's reason when a cell already refused it (the
 *   others cannot take it either), else kept for capacity;
 * - **unreachable** (no compatible cell answered): kept, never rejected (an outage burns no retries);
 * - a kept task waits `backoffDelay(attempts)`: capped exponential with jitter, so a fleet that stays
 *   full is asked less and less often, up to the cap.
 */
export function planRound(input: RoundInput): RoundPlan {
  const { schedule, held, answers, maxCellRefusals, backoff, nowMs, random } = input;
  const plan: RoundPlan = {
    placed: [],
    reject: [],
    keep: [],
    refresh: [],
    nextRoundAtMs: Infinity,
    unreachable: 0,
    refused: 0,
  };
  const rejected = new Set<string>();
  const reject = (r: Rejection) => {
    if (rejected.has(r.taskGuid)) return;
    rejected.add(r.taskGuid);
    plan.reject.push(r);
  };
  const attemptsOf = (guid: string) => (held.get(guid)?.attempts ?? 0) + 1;
  const keep = (k: Omit<Kept, "attempts" | "retryAtMs">, waitMs: number) => {
    const kept: Kept = { ...k, attempts: attemptsOf(k.taskGuid), retryAtMs: nowMs + waitMs };
    plan.keep.push(kept);
    plan.nextRoundAtMs = Math.min(plan.nextRoundAtMs, kept.retryAtMs);
  };

  for (const placement of schedule.placements) {
    const answer = answers.get(placement.cellId) ?? { error: "no answer" };
    const refusedBy = new Map<string, string>();
    if ("error" in answer) {
      const reason = `cell ${placement.cellId} did not take the work: ${answer.error}`;
      for (const t of placement.tasks) refusedBy.set(t.taskGuid, reason);
    } else for (const f of answer.refused) refusedBy.set(f.taskGuid, f.reason || "the cell refused the task");
    const accepted = placement.tasks.filter((t) => !refusedBy.has(t.taskGuid));
    if (accepted.length) plan.placed.push({ cellId: placement.cellId, tasks: accepted });
    if (refusedBy.size === 0) continue;
    plan.refresh.push(placement.cellId);
    for (const t of placement.tasks) {
      const reason = refusedBy.get(t.taskGuid);
      if (reason === undefined) continue;
      plan.refused++;
      const refusals = (held.get(t.taskGuid)?.refusals.length ?? 0) + 1;
      if (refusals >= maxCellRefusals) reject({ taskGuid: t.taskGuid, reason, permanent: false });
      // Again at once: the refusing cell is excluded and fetched again before then.
      else keep({ taskGuid: t.taskGuid, cause: "refused", refusal: { cellId: placement.cellId, reason } }, 0);
    }
  }

  for (const failure of schedule.failures) {
    const guid = failure.task.taskGuid;
    const refusals = held.get(guid)?.refusals ?? [];
    const lastRefusal = refusals[refusals.length - 1];
    const wait = () => backoffDelay(attemptsOf(guid), backoff, random);
    if (failure.permanent) reject({ taskGuid: guid, reason: failure.reason, permanent: true });
    else if (failure.cause === "unreachable") {
      plan.unreachable++;
      keep({ taskGuid: guid, cause: "unreachable" }, wait());
    } else if (lastRefusal) reject({ taskGuid: guid, reason: lastRefusal.reason, permanent: false });
    else keep({ taskGuid: guid, cause: "capacity" }, wait());
  }
  return plan;
}

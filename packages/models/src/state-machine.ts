import { create } from "@bufbuild/protobuf";
import { FailureKind, TaskSchema, TaskState, type Task, type TaskCreateRequest, type TaskUsage } from "@diego/proto";
import { DiegoError, failedPrecondition } from "./errors.js";
import { resolveFailureKind } from "./failure-kinds.js";
import { FailureReason, truncateReason } from "./failure-reasons.js";

/**
 * The task state machine as one table (docs/contract.md, task states; a CLAIMED state sits between
 * PENDING and RUNNING). Pure: the clock comes in as `now` (Unix nanoseconds).
 */
export type Actor = "client" | "cell" | "auctioneer" | "converger" | "bbs";

/** `absent` stands for "no such task" (before desire, after delete). */
export type StateOrAbsent = TaskState | "absent";

export interface TransitionArgs {
  desire: { request: TaskCreateRequest };
  start: { cellId: string };
  running: { cellId: string };
  complete: { cellId: string; failed: boolean; failureReason: string; result: string } & Partial<TaskOutcome>;
  /** `permanent`: no live cell can ever run the task (the scheduler's verdict): fail it now, without retries. */
  reject: { reason: string; cellId: string; maxRetries: number; permanent?: boolean };
  fail: { reason: string };
  cancel: Record<string, never>;
  expire: Record<string, never>;
  cellLost: Record<string, never>;
  resolve: Record<string, never>;
  demote: Record<string, never>;
  delete: Record<string, never>;
  expireCompleted: Record<string, never>;
}

export type TransitionName = keyof TransitionArgs;

/** What the cell measured of a completed task (docs/outcomes.md); the kind is derived from the text when unset. */
export interface TaskOutcome {
  exitStatus: number | undefined;
  failureKind: FailureKind;
  usage: TaskUsage | undefined;
}

/** What a transition does: write the new task, remove it, or leave it as it is (an idempotent repeat). */
export type Outcome = { kind: "put"; task: Task } | { kind: "delete" } | { kind: "unchanged"; task: Task };

interface Rule<N extends TransitionName> {
  from: readonly StateOrAbsent[];
  /** The state the task ends in; `absent` when it is removed. */
  to: StateOrAbsent;
  /** The only actors that may make the transition; anyone else gets PERMISSION_DENIED. */
  by: readonly Actor[];
  /** Called only when the task's state is in `from`; may refuse with a DiegoError. */
  apply(task: Task | undefined, args: TransitionArgs[N], now: bigint): Outcome;
  /**
   * The idempotent repeat (Diego's T2'): from these states, when `same` holds, the call succeeds and
   * changes nothing. Checked before `from`.
   */
  repeat?: { from: readonly TaskState[]; same(task: Task, args: TransitionArgs[N]): boolean };
}

const { PENDING, CLAIMED, RUNNING, COMPLETED, RESOLVING } = TaskState;

export const TRANSITIONS: { [N in TransitionName]: Rule<N> } = {
  desire: {
    from: ["absent"],
    to: PENDING,
    by: ["client"],
    apply: (_task, { request }, now) => {
      const { $typeName: _, ...fields } = request;
      return put(create(TaskSchema, { ...fields, state: PENDING, createdAt: now, updatedAt: now }));
    },
  },
  start: {
    from: [PENDING],
    to: CLAIMED,
    by: ["cell"],
    apply: (task, { cellId }, now) => put(next(task!, now, { state: CLAIMED, cellId, claimedAt: now })),
    repeat: { from: [CLAIMED, RUNNING], same: onSameCell },
  },
  running: {
    from: [CLAIMED],
    to: RUNNING,
    by: ["cell"],
    apply: (task, { cellId }, now) => {
      mustBeOnCell(task!, cellId);
      return put(next(task!, now, { state: RUNNING, startedAt: now }));
    },
    repeat: { from: [RUNNING], same: onSameCell },
  },
  complete: {
    from: [CLAIMED, RUNNING],
    to: COMPLETED,
    by: ["cell"],
    apply: (task, { cellId, failed, failureReason, result, ...outcome }, now) => {
      mustBeOnCell(task!, cellId);
      return put(completed(task!, now, failed, failed ? failureReason : "", result, outcome));
    },
  },
  reject: {
    from: [PENDING, CLAIMED],
    to: PENDING,
    by: ["auctioneer", "cell"],
    apply: (task, { reason, cellId, maxRetries, permanent }, now) => {
      const t = task!;
      if (t.state === CLAIMED) mustBeOnCell(t, cellId);
      const rejection = { rejectionCount: t.rejectionCount + 1, rejectionReason: truncateReason(reason) };
      if (permanent || t.rejectionCount >= maxRetries)
        return put(completed({ ...t, ...rejection }, now, true, reason, ""));
      return put(next(t, now, { ...rejection, state: PENDING, cellId: "", claimedAt: 0n }));
    },
  },
  fail: {
    from: [PENDING, CLAIMED, RUNNING],
    to: COMPLETED,
    by: ["bbs"],
    apply: (task, { reason }, now) => put(completed(task!, now, true, reason, "")),
  },
  cancel: {
    from: [PENDING, CLAIMED, RUNNING],
    to: COMPLETED,
    by: ["client"],
    apply: (task, _args, now) =>
      put(completed(task!, now, true, FailureReason.cancelled, "", { failureKind: FailureKind.CANCELLED })),
  },
  expire: {
    from: [PENDING],
    to: COMPLETED,
    by: ["converger"],
    apply: (task, _args, now) =>
      put(
        completed(task!, now, true, FailureReason.notStartedWithinTimeLimit, "", { failureKind: FailureKind.EXPIRED }),
      ),
  },
  cellLost: {
    from: [CLAIMED, RUNNING],
    to: COMPLETED,
    by: ["converger"],
    apply: (task, _args, now) =>
      put(completed(task!, now, true, FailureReason.cellDisappeared, "", { failureKind: FailureKind.CELL_LOST })),
  },
  resolve: {
    from: [COMPLETED],
    to: RESOLVING,
    by: ["client", "bbs"],
    apply: (task, _args, now) => put(next(task!, now, { state: RESOLVING })),
  },
  demote: {
    from: [RESOLVING],
    to: COMPLETED,
    by: ["converger"],
    apply: (task, _args, now) => put(next(task!, now, { state: COMPLETED })),
  },
  delete: {
    from: [RESOLVING],
    to: "absent",
    by: ["client", "bbs"],
    apply: () => ({ kind: "delete" }),
  },
  expireCompleted: {
    from: [COMPLETED, RESOLVING],
    to: "absent",
    by: ["converger"],
    apply: () => ({ kind: "delete" }),
  },
};

function onSameCell(task: Task, { cellId }: { cellId: string }): boolean {
  return task.cellId === cellId;
}

/**
 * Applies a transition to the current task (undefined when absent). Throws DiegoError:
 * NOT_FOUND for a missing task, ALREADY_EXISTS for desire over an existing one, FAILED_PRECONDITION
 * (`Cannot transition from COMPLETED to RUNNING`) for any other state outside the rule's `from`,
 * PERMISSION_DENIED when the actor may not make this transition.
 */
export function transition<N extends TransitionName>(
  name: N,
  actor: Actor,
  task: Task | undefined,
  args: TransitionArgs[N],
  now: bigint,
): Outcome {
  const rule = TRANSITIONS[name] as Rule<N>;
  if (!rule.by.includes(actor)) throw new DiegoError("PERMISSION_DENIED", `${actor} may not ${name} a task`);
  if (task && rule.repeat?.from.includes(task.state) && rule.repeat.same(task, args))
    return { kind: "unchanged", task };
  const state: StateOrAbsent = task ? task.state : "absent";
  if (!rule.from.includes(state)) {
    if (state === "absent") throw new DiegoError("NOT_FOUND", "task not found");
    if (!task) throw new DiegoError("INTERNAL", "unreachable");
    if (rule.from.includes("absent"))
      throw new DiegoError("ALREADY_EXISTS", `task ${JSON.stringify(task.taskGuid)} already exists`);
    throw failedPrecondition(`Cannot transition from ${stateName(state)} to ${stateName(rule.to)}`);
  }
  return rule.apply(task, args, now);
}

export function stateName(state: StateOrAbsent): string {
  return state === "absent" ? "ABSENT" : (TaskState[state] ?? String(state));
}

/** States a task stays in until it is resolved or expires. */
export function isFinished(state: TaskState): boolean {
  return state === COMPLETED || state === RESOLVING;
}

function put(task: Task): Outcome {
  return { kind: "put", task };
}

function next(task: Task, now: bigint, fields: Partial<Omit<Task, "$typeName">>): Task {
  return { ...task, ...fields, updatedAt: now };
}

/** COMPLETED with its outcome: the kind given (the cell's) or the one the text maps to; completed_at set. */
function completed(
  task: Task,
  now: bigint,
  failed: boolean,
  failureReason: string,
  result: string,
  outcome: Partial<TaskOutcome> = {},
): Task {
  return next(task, now, {
    state: COMPLETED,
    failed,
    failureReason: failed ? truncateReason(failureReason) : "",
    result,
    firstCompletedAt: task.firstCompletedAt || now,
    completedAt: now,
    exitStatus: outcome.exitStatus,
    failureKind: resolveFailureKind(failed, failureReason, outcome.failureKind),
    usage: outcome.usage,
  });
}

function mustBeOnCell(task: Task, cellId: string): void {
  if (task.cellId !== cellId) {
    throw failedPrecondition(`task ${task.taskGuid} is on cell ${task.cellId || "(none)"}, not ${cellId || "(none)"}`);
  }
}

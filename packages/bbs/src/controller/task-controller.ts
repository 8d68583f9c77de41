import { egressViolations, EgressPolicy, taskLogger, type Logger } from "@diego/kit";
import {
  applyResourcePolicy,
  DiegoError,
  failedPrecondition,
  invalidArgument,
  logTailOf,
  MAX_LOG_TAIL_BYTES,
  NO_RESOURCE_POLICY,
  redactTask,
  taskWork,
  taskNotFound,
  transition,
  validateTaskCreateRequest,
  type Actor,
  type Outcome,
  type ResourcePolicy,
  type TaskOutcome,
  type TransitionArgs,
  type TransitionName,
} from "@diego/models";
import {
  cellv1,
  TaskState,
  type LifecycleBatchItem,
  type LogLine,
  type Task,
  type TaskBatchItem,
  type TaskCreateRequest,
} from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { LifecycleBatchResultSchema, TaskBatchResultSchema } from "@diego/proto";
import type { TaskWork } from "../auctioneer-client/auction-requester.js";
import type { CallbackTransitions } from "../callbacks/callback-sender.js";
import type { PresenceStore } from "../cells/presence-store.js";
import type { GrpcClients } from "../grpc-clients.js";
import type { LogTailStore } from "../log-tails/log-tail-store.js";
import type { BbsMetrics } from "../metrics/bbs-metrics.js";
import { decodeTask, encodeTask } from "../store/task-entry.js";
import type { ApplyResult, PageRequest, TaskFilter, TaskStore } from "../store/task-store.js";
import { batchItemError, checkBatchSize, itemCellId } from "./batch.js";

type TaskBatchResultInit = MessageInitShape<typeof TaskBatchResultSchema>;
type LifecycleBatchResultInit = MessageInitShape<typeof LifecycleBatchResultSchema>;

export interface TaskControllerOptions {
  store: TaskStore;
  presence: PresenceStore;
  /** Where completed tasks' last output is kept, removed with the task. */
  logTails: LogTailStore;
  auction: { enqueue(works: TaskWork[]): void };
  callbacks: { submit(task: Task): void };
  clients: GrpcClients;
  metrics?: BbsMetrics;
  logger: Logger;
  /** Unix nanoseconds. */
  now: () => bigint;
  maxTaskRetries: number;
  /** False when tasks with secrets cannot be stored (etcd without an encryption key): DesireTask refuses them. */
  canStoreSecrets?: boolean;
  /** Refuses at DesireTask a URL whose host is an address the policy denies; default: the default policy. */
  egress?: EgressPolicy;
  /** The operator's default and maximum memory_mb and disk_mb of a task; default: none. */
  resources?: ResourcePolicy;
}

/** Transitions convergence makes. */
export type ConvergenceTransition = "expire" | "cellLost" | "demote" | "expireCompleted";

/**
 * Every task operation of the BBS: each is one pure transition of @diego/models applied through the
 * store's compare-and-swap, followed by its side effects (auction request, callback, telling a cell to
 * stop, metrics). Handlers only translate requests and responses.
 */
export class TaskController {
  private readonly egress: EgressPolicy;

  constructor(private readonly o: TaskControllerOptions) {
    this.egress = o.egress ?? new EgressPolicy();
  }

  // ---- the client API (TaskService) ----

  async desire(request: TaskCreateRequest, actor: Actor = "client"): Promise<Task> {
    validateTaskCreateRequest(request);
    if (this.o.canStoreSecrets === false && (request.imagePassword || request.secretEnv.length))
      throw failedPrecondition(
        "this BBS has no encryption key (--encryption-keys, --active-key-id), so it refuses to store image_password or secret_env",
      );
    const refused = egressViolations(request, this.egress);
    const sized = applyResourcePolicy(request, this.o.resources ?? NO_RESOURCE_POLICY);
    refused.push(...sized.violations);
    if (refused.length) throw invalidArgument(refused);
    if (sized.memoryMb !== request.memoryMb || sized.diskMb !== request.diskMb)
      request = { ...request, memoryMb: sized.memoryMb, diskMb: sized.diskMb };
    const { outcome } = await this.apply(request.taskGuid, "desire", actor, { request });
    const task = (outcome as Extract<Outcome, { kind: "put" }>).task;
    this.info(task, "task desired");
    this.o.auction.enqueue([taskWork(task)]);
    return redactTask(task);
  }

  async get(guid: string): Promise<Task> {
    requireGuid(guid);
    const task = await this.o.store.get(guid);
    if (!task) throw taskNotFound(guid);
    return redactTask(task);
  }

  async list(filter: TaskFilter): Promise<Task[]> {
    return (await this.o.store.list(filter)).map(redactTask);
  }

  /**
   * One page of the matching tasks, in guid order, as protobuf bytes straight from the store (only a
   * task that carries image_password or secret_env is decoded, redacted and encoded again): ListTasks
   * sends these without decoding and re-encoding every task.
   */
  listPageEncoded(filter: TaskFilter, page: PageRequest): { tasks: Uint8Array[]; lastGuid: string; more: boolean } {
    const { entries, more } = this.o.store.page(filter, page);
    return {
      tasks: entries.map((e) => (e.hasImagePassword ? encodeTask(redactTask(decodeTask(e.bytes))) : e.bytes)),
      lastGuid: entries.at(-1)?.guid ?? "",
      more,
    };
  }

  async cancel(guid: string, actor: Actor = "client"): Promise<void> {
    requireGuid(guid);
    const { before, outcome } = await this.apply(guid, "cancel", actor, {});
    const task = putTask(outcome);
    this.info(task, "task cancelled");
    this.completed(task);
    if (before?.cellId && (before.state === TaskState.CLAIMED || before.state === TaskState.RUNNING)) {
      void this.stopOnCell(before.cellId, task);
    }
  }

  async resolving(guid: string, actor: Actor = "client"): Promise<void> {
    requireGuid(guid);
    await this.apply(guid, "resolve", actor, {});
  }

  async delete(guid: string, actor: Actor = "client"): Promise<void> {
    requireGuid(guid);
    await this.apply(guid, "delete", actor, {});
  }

  // ---- cells and the auctioneer (TaskLifecycleService) ----

  /** PENDING → CLAIMED; the full task, image_password included, goes only to the claiming cell. */
  async start(guid: string, cellId: string, actor: Actor = "cell"): Promise<{ shouldStart: boolean; task: Task }> {
    requireFields({ task_guid: guid, cell_id: cellId });
    const { outcome } = await this.apply(guid, "start", actor, { cellId });
    const task = outcome.kind === "delete" ? undefined : outcome.task;
    if (!task) throw new DiegoError("INTERNAL", "start deleted a task");
    if (outcome.kind === "put") {
      this.o.metrics?.tasksStarted.inc({ cell_id: cellId });
      this.info(task, "task claimed");
    }
    return { shouldStart: outcome.kind === "put", task };
  }

  async running(guid: string, cellId: string, actor: Actor = "cell"): Promise<void> {
    requireFields({ task_guid: guid, cell_id: cellId });
    await this.apply(guid, "running", actor, { cellId });
  }

  async complete(
    guid: string,
    cellId: string,
    failed: boolean,
    failureReason: string,
    result: string,
    actor: Actor = "cell",
    outcome: Partial<TaskOutcome> & { logTail?: readonly LogLine[] } = {},
  ): Promise<void> {
    requireFields({ task_guid: guid, cell_id: cellId });
    const { logTail, ...measured } = outcome;
    const applied = await this.apply(guid, "complete", actor, { cellId, failed, failureReason, result, ...measured });
    const task = putTask(applied.outcome);
    this.info(task, "task completed", { failed, failureReason: task.failureReason });
    if (logTail?.length) {
      // Kept before the callback goes out, so whoever reacts to the completion can read it.
      await this.o.logTails
        .put(guid, logTailOf(logTail, MAX_LOG_TAIL_BYTES))
        .catch((err: unknown) => taskLogger(this.o.logger, task).warn({ err }, "cannot keep the task's last output"));
    }
    this.completed(task);
  }

  /** The last output kept of a completed task (undefined when none was kept). */
  logTail(guid: string): Promise<LogLine[] | undefined> {
    return this.o.logTails.get(guid);
  }

  /** Removes the log tails whose task is gone (a BBS that stopped between the two deletes); convergence. */
  async pruneLogTails(): Promise<number> {
    let pruned = 0;
    for (const guid of await this.o.logTails.guids()) {
      if (await this.o.store.get(guid)) continue;
      await this.o.logTails.delete(guid);
      pruned++;
    }
    return pruned;
  }

  /** Back to PENDING and straight to the auctioneer again, or COMPLETED failed after max_task_retries. */
  async reject(
    guid: string,
    reason: string,
    cellId: string,
    actor: Actor = cellId ? "cell" : "auctioneer",
    permanent = false,
  ): Promise<{ failed: boolean }> {
    requireFields({ task_guid: guid, rejection_reason: reason });
    const { outcome } = await this.apply(guid, "reject", actor, {
      reason,
      cellId,
      maxRetries: this.o.maxTaskRetries,
      permanent,
    });
    const task = putTask(outcome);
    if (task.state === TaskState.COMPLETED) {
      this.info(task, permanent ? "task can never be placed; failed" : "task rejected too often; failed", {
        rejections: task.rejectionCount,
        reason,
      });
      this.completed(task);
      return { failed: true };
    }
    this.info(task, "task rejected; auctioning it again", { rejections: task.rejectionCount, reason });
    this.o.auction.enqueue([taskWork(task)]);
    return { failed: false };
  }

  // ---- batches (TaskBatch, LifecycleBatch) ----

  /**
   * Several client calls in one: each item goes exactly the way its own RPC goes (same validation,
   * same compare-and-swap, same side effects), independently of the others. Every item's write is
   * queued before any is awaited, so items naming one task apply in their order and the store's write
   * coalescer puts items of distinct tasks in shared etcd transactions.
   */
  async taskBatch(items: readonly TaskBatchItem[], actor: Actor = "client"): Promise<TaskBatchResultInit[]> {
    checkBatchSize(items.length);
    return Promise.all(items.map((item, i) => this.taskBatchItem(item, i, actor)));
  }

  /** Several transitions of one cell in one call; as taskBatch, for TaskLifecycleService. */
  async lifecycleBatch(
    cellId: string,
    items: readonly LifecycleBatchItem[],
    actor: Actor = "cell",
  ): Promise<LifecycleBatchResultInit[]> {
    requireFields({ cell_id: cellId });
    checkBatchSize(items.length);
    return Promise.all(items.map((item, i) => this.lifecycleBatchItem(cellId, item, i, actor)));
  }

  private async taskBatchItem(item: TaskBatchItem, index: number, actor: Actor): Promise<TaskBatchResultInit> {
    try {
      const call = item.call;
      switch (call.case) {
        case "desire":
          return { result: { case: "desire", value: { task: await this.desire(call.value, actor) } } };
        case "cancel":
          await this.cancel(call.value.taskGuid, actor);
          return { result: { case: "cancel", value: {} } };
        case "resolving":
          await this.resolving(call.value.taskGuid, actor);
          return { result: { case: "resolving", value: {} } };
        case "delete":
          await this.delete(call.value.taskGuid, actor);
          return { result: { case: "delete", value: {} } };
        default:
          throw invalidArgument([
            { field: `items[${index}].call`, message: "is required (desire, cancel, resolving or delete)" },
          ]);
      }
    } catch (err) {
      return { result: { case: "error", value: batchItemError(err) } };
    }
  }

  private async lifecycleBatchItem(
    batchCellId: string,
    item: LifecycleBatchItem,
    index: number,
    actor: Actor,
  ): Promise<LifecycleBatchResultInit> {
    try {
      const t = item.transition;
      switch (t.case) {
        case "start": {
          const cellId = itemCellId(batchCellId, t.value.cellId, index);
          return { result: { case: "start", value: await this.start(t.value.taskGuid, cellId, actor) } };
        }
        case "running":
          await this.running(t.value.taskGuid, itemCellId(batchCellId, t.value.cellId, index), actor);
          return { result: { case: "running", value: {} } };
        case "complete": {
          const c = t.value;
          await this.complete(
            c.taskGuid,
            itemCellId(batchCellId, c.cellId, index),
            c.failed,
            c.failureReason,
            c.result,
            actor,
            { exitStatus: c.exitStatus, failureKind: c.failureKind, usage: c.usage, logTail: c.logTail },
          );
          return { result: { case: "complete", value: {} } };
        }
        case "reject": {
          const r = t.value;
          const cellId = itemCellId(batchCellId, r.cellId, index);
          return {
            result: {
              case: "reject",
              value: await this.reject(r.taskGuid, r.rejectionReason, cellId, actor, r.permanent),
            },
          };
        }
        default:
          throw invalidArgument([
            { field: `items[${index}].transition`, message: "is required (start, running, complete or reject)" },
          ]);
      }
    } catch (err) {
      return { result: { case: "error", value: batchItemError(err) } };
    }
  }

  // ---- the BBS itself: callbacks and convergence ----

  async resolve(guid: string): Promise<Task> {
    const { outcome } = await this.apply(guid, "resolve", "bbs", {});
    return putTask(outcome);
  }

  async deleteResolved(guid: string): Promise<void> {
    await this.apply(guid, "delete", "bbs", {});
  }

  /** The CallbackTransitions the callback sender uses. */
  get callbackTransitions(): CallbackTransitions {
    return { resolve: (guid) => this.resolve(guid), delete: (guid) => this.deleteResolved(guid) };
  }

  /**
   * A convergence transition; returns the task after it, or undefined when it was removed. With
   * `onCell`, only while the task is still on that cell (FAILED_PRECONDITION once it moved on).
   */
  async converge(guid: string, name: ConvergenceTransition, onCell?: string): Promise<Task | undefined> {
    const { outcome } = await this.apply(guid, name, "converger", {} as never, onCell);
    if (outcome.kind === "delete") {
      this.o.logger.info({ taskGuid: guid }, `task removed by convergence (${name})`);
      return undefined;
    }
    const task = outcome.task;
    const log = taskLogger(this.o.logger, task);
    if (name === "demote") {
      log.info("resolving task demoted to COMPLETED");
      this.o.callbacks.submit(task);
    } else {
      log.info({ failureReason: task.failureReason }, "task failed by convergence");
      this.completed(task);
    }
    return task;
  }

  /** Re-sends pending tasks to the auctioneer (convergence). */
  async auctionAgain(guids: string[]): Promise<number> {
    const works: TaskWork[] = [];
    for (const guid of guids) {
      const task = await this.o.store.get(guid);
      if (task?.state === TaskState.PENDING) works.push(taskWork(task));
    }
    if (works.length) this.o.auction.enqueue(works);
    return works.length;
  }

  /** Submits a COMPLETED task's callback again (convergence). */
  async callbackAgain(guid: string): Promise<boolean> {
    const task = await this.o.store.get(guid);
    if (task?.state !== TaskState.COMPLETED || !task.completionCallbackUrl) return false;
    this.o.callbacks.submit(task);
    return true;
  }

  // ---- helpers ----

  /** An info line about a task (taskGuid, domain, cellId), skipped cheaply when info is off. */
  private info(task: Task, msg: string, fields: Record<string, unknown> = {}): void {
    if (this.o.logger.isLevelEnabled("info")) taskLogger(this.o.logger, task).info(fields, msg);
  }

  private async apply<N extends TransitionName>(
    guid: string,
    name: N,
    actor: Actor,
    args: TransitionArgs[N],
    onCell?: string,
  ): Promise<ApplyResult> {
    const now = this.o.now();
    try {
      const applied = await this.o.store.apply(guid, (current) => {
        if (onCell !== undefined && current !== undefined && current.cellId !== onCell)
          throw failedPrecondition(`task ${JSON.stringify(guid)} is no longer on cell ${JSON.stringify(onCell)}`);
        return transition(name, actor, current, args, now);
      });
      if (applied.outcome.kind === "delete") {
        await this.o.logTails
          .delete(guid)
          .catch((err: unknown) => this.o.logger.warn({ err, taskGuid: guid }, "cannot remove the task's kept output"));
      }
      return applied;
    } catch (err) {
      if (DiegoError.is(err, "NOT_FOUND")) throw taskNotFound(guid);
      throw err;
    }
  }

  private completed(task: Task): void {
    this.o.metrics?.completed(task.cellId, task.failed);
    this.o.callbacks.submit(task);
  }

  /** Tells the cell to stop the task's container now; if it cannot be told, its own reconcile stops it. */
  private async stopOnCell(cellId: string, task: Task): Promise<void> {
    const log = taskLogger(this.o.logger, { ...task, cellId });
    try {
      const cell = await this.o.presence.get(cellId);
      if (!cell?.address) {
        log.warn("cancelled task's cell is not present; it cannot be told to stop");
        return;
      }
      await this.o.clients.get(cellv1.CellRepService, cell.address).cancelTask({ taskGuid: task.taskGuid });
      log.info("cell told to stop the cancelled task");
    } catch (err) {
      log.warn(
        { err: (err as Error).message },
        "could not tell the cell to stop the cancelled task; its reconcile will",
      );
    }
  }
}

function putTask(outcome: Outcome): Task {
  if (outcome.kind === "delete") throw new DiegoError("INTERNAL", "transition removed the task unexpectedly");
  return outcome.task;
}

function requireGuid(guid: string): void {
  if (!guid) throw invalidArgument([{ field: "task_guid", message: "is required" }]);
}

function requireFields(fields: Record<string, string>): void {
  const violations = Object.entries(fields)
    .filter(([, v]) => !v)
    .map(([field]) => ({ field, message: "is required" }));
  if (violations.length) throw invalidArgument(violations);
}

import { TaskState, type Task, type TaskCreateRequest } from "@diego/proto";
import { DiegoError } from "@diego/models";
import { isResync, type WatchFilter, type WatchItem, type WatchOptions } from "./resumable-watch.js";

export interface RunToCompletionOptions {
  /** Called with the desired task, then whenever its state or cell changes. */
  onProgress?: (task: Task) => void;
  /** Aborting stops following (the promise rejects with CANCELLED); the task itself is left as it is. */
  signal?: AbortSignal;
  /** How often to read the task when no event came; default 1 s. Events make it faster, polling makes it sure. */
  pollIntervalMs?: number;
  /** Resolve and delete the completed task (default true). With false the task stays COMPLETED for another reader. */
  resolve?: boolean;
  /** How long the BBS may stay unreachable while following before giving up; default 60 s. */
  unreachableTimeoutMs?: number;
  /**
   * How long the desire itself is tried again while no BBS can take it (a restart, a leader change of
   * the BBS or etcd); default 15 s, never more than unreachableTimeoutMs.
   */
  desireRetryMs?: number;
  /** Awaited once the task has completed, before it is resolved and deleted (e.g. to read the rest of its logs). */
  onCompleted?: (task: Task) => Promise<void> | void;
}

/** What runToCompletion needs of a client (DiegoClient has it all). */
export interface TaskFollowApi {
  desire(request: TaskCreateRequest, options?: { signal?: AbortSignal }): Promise<Task>;
  get(taskGuid: string, options?: { signal?: AbortSignal }): Promise<Task>;
  watch(filter: WatchFilter, options: WatchOptions): AsyncIterable<WatchItem>;
  resolve(taskGuid: string, options?: { signal?: AbortSignal }): Promise<void>;
  delete(taskGuid: string, options?: { signal?: AbortSignal }): Promise<void>;
}

const { COMPLETED, RESOLVING } = TaskState;

/**
 * Desire → follow → resolve → delete. The watch stream is opened before the task is desired, so its
 * events are seen from the start; since a stream can drop (BBS restart, network) or lag, the task is
 * also read whenever no event came for `pollIntervalMs`, and snapshots are ordered by updated_at, so a
 * change is never missed and never goes backwards.
 */
export async function runToCompletion(
  client: TaskFollowApi,
  request: TaskCreateRequest,
  options: RunToCompletionOptions = {},
): Promise<Task> {
  const signal = options.signal;
  signal?.throwIfAborted();
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const tracker = new TaskTracker(request.taskGuid, options.onProgress);
  const stopWatching = new AbortController();
  const abort = () => stopWatching.abort();
  signal?.addEventListener("abort", abort, { once: true });
  const watching = watchLoop(client, request, tracker, stopWatching.signal, pollIntervalMs);
  const outage = new OutageBudget(options.unreachableTimeoutMs ?? 60_000);
  try {
    const desireBudget = new OutageBudget(
      Math.min(options.desireRetryMs ?? DESIRE_RETRY_MS, options.unreachableTimeoutMs ?? 60_000),
    );
    tracker.offer(await desireOnce(client, request, desireBudget, pollIntervalMs, signal));
    for (;;) {
      if (tracker.removed) {
        const task = removedResult(tracker);
        await options.onCompleted?.(task);
        return task;
      }
      const task = tracker.latest!;
      if (task.state === COMPLETED || task.state === RESOLVING) {
        stopWatching.abort();
        await options.onCompleted?.(task);
        if (task.state === COMPLETED && options.resolve !== false)
          await resolveAndDelete(client, task.taskGuid, signal, outage, pollIntervalMs);
        return task;
      }
      const woken = await tracker.waitForChange(pollIntervalMs, signal);
      if (woken || tracker.removed) continue;
      try {
        tracker.offer(await client.get(request.taskGuid, { signal }));
        outage.ok();
      } catch (err) {
        if (DiegoError.is(err, "NOT_FOUND")) tracker.markRemoved(undefined);
        else outage.failed(err, signal);
      }
    }
  } catch (err) {
    if (signal?.aborted) throw new DiegoError("CANCELLED", `stopped following task ${request.taskGuid}`);
    throw err;
  } finally {
    signal?.removeEventListener("abort", abort);
    stopWatching.abort();
    await watching;
  }
}

const DESIRE_RETRY_MS = 15_000;

/**
 * DesireTask, tried again while the BBS cannot take it (UNAVAILABLE, DEADLINE_EXCEEDED) within
 * `budget`. When a retry finds the guid taken, the earlier attempt went through and only its answer
 * was lost: that task is this desire's (a guid is the client's own, so another client's desire of the
 * same guid in that window is not told apart).
 */
async function desireOnce(
  client: TaskFollowApi,
  request: TaskCreateRequest,
  budget: OutageBudget,
  retryMs: number,
  signal: AbortSignal | undefined,
): Promise<Task> {
  for (let retried = false; ; retried = true) {
    try {
      return await client.desire(request, { signal });
    } catch (err) {
      if (retried && DiegoError.is(err, "ALREADY_EXISTS")) return client.get(request.taskGuid, { signal });
      budget.failed(err, signal);
      await sleep(Math.min(retryMs, 1_000), signal);
    }
  }
}

/** A task that vanished: fine if it had completed (a callback or another client consumed it), an error otherwise. */
function removedResult(tracker: TaskTracker): Task {
  const last = tracker.removedTask ?? tracker.latest;
  if (last && (last.state === COMPLETED || last.state === RESOLVING)) return last;
  throw new DiegoError("NOT_FOUND", `task ${JSON.stringify(tracker.taskGuid)} was deleted before it completed`);
}

async function resolveAndDelete(
  client: TaskFollowApi,
  taskGuid: string,
  signal: AbortSignal | undefined,
  outage: OutageBudget,
  retryMs: number,
) {
  const attempt = async (step: () => Promise<void>): Promise<"done" | "taken"> => {
    for (;;) {
      try {
        await step();
        outage.ok();
        return "done";
      } catch (err) {
        // Someone else (the completion callback, another client, convergence) has the task: it is theirs now.
        if (DiegoError.is(err, "FAILED_PRECONDITION") || DiegoError.is(err, "NOT_FOUND")) return "taken";
        outage.failed(err, signal);
        await sleep(retryMs, signal);
      }
    }
  };
  if ((await attempt(() => client.resolve(taskGuid, { signal }))) === "taken") return;
  await attempt(() => client.delete(taskGuid, { signal }));
}

/** Reads the event stream into the tracker, reopening it after a failure until `stop` aborts. */
async function watchLoop(
  client: TaskFollowApi,
  request: TaskCreateRequest,
  tracker: TaskTracker,
  stop: AbortSignal,
  retryMs: number,
) {
  while (!stop.aborted) {
    try {
      for await (const item of client.watch({ domain: request.domain }, { signal: stop })) {
        if (isResync(item)) {
          // Events may be missing: take the listed task (its absence is left to polling, which tells a
          // task not desired yet from one deleted).
          const listed = item.tasks.find((t) => t.taskGuid === request.taskGuid);
          if (listed) tracker.offer(listed);
          continue;
        }
        const { event: e } = item;
        if (e.case === "created" && e.value.task?.taskGuid === request.taskGuid) tracker.offer(e.value.task);
        else if (e.case === "changed" && e.value.after?.taskGuid === request.taskGuid) tracker.offer(e.value.after);
        else if (e.case === "removed" && e.value.task?.taskGuid === request.taskGuid) tracker.markRemoved(e.value.task);
      }
    } catch {
      // The stream broke; polling covers the gap until it is back.
    }
    await sleep(retryMs, stop).catch(() => undefined);
  }
}

/** The newest known snapshot of one task, ordered by updated_at, and a way to wait for the next one. */
class TaskTracker {
  latest: Task | undefined;
  removed = false;
  removedTask: Task | undefined;
  private wake: (() => void) | undefined;
  private reported: string | undefined;

  constructor(
    readonly taskGuid: string,
    private readonly onProgress?: (task: Task) => void,
  ) {}

  offer(task: Task): void {
    if (this.removed) return;
    const current = this.latest;
    if (
      current &&
      (task.updatedAt < current.updatedAt || (task.updatedAt === current.updatedAt && task.state <= current.state))
    )
      return;
    this.latest = task;
    const key = `${task.state}/${task.cellId}`;
    if (key !== this.reported) {
      this.reported = key;
      this.onProgress?.(task);
    }
    this.notify();
  }

  markRemoved(task: Task | undefined): void {
    if (task) this.offer(task);
    this.removed = true;
    this.removedTask = task ?? this.latest;
    this.notify();
  }

  /** True when a new snapshot came, false when `ms` passed without one. */
  waitForChange(ms: number, signal?: AbortSignal): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const finish = (changed: boolean) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        this.wake = undefined;
        resolve(changed);
      };
      const onAbort = () => {
        clearTimeout(timer);
        this.wake = undefined;
        reject(signal!.reason);
      };
      const timer = setTimeout(() => finish(false), ms);
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.wake = () => finish(true);
    });
  }

  private notify(): void {
    this.wake?.();
  }
}

/** Tolerates an unreachable BBS for a while (a restart, a leader change), then gives up with its error. */
class OutageBudget {
  private since: number | undefined;

  constructor(private readonly limitMs: number) {}

  ok(): void {
    this.since = undefined;
  }

  failed(err: unknown, signal: AbortSignal | undefined): void {
    signal?.throwIfAborted();
    const transient =
      DiegoError.is(err, "UNAVAILABLE") || DiegoError.is(err, "DEADLINE_EXCEEDED") || DiegoError.is(err, "ABORTED");
    if (!transient) throw err;
    const now = Date.now();
    this.since ??= now;
    if (now - this.since >= this.limitMs) throw err;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

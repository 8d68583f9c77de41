import { EgressDenied, egressRequest, EgressPolicy, taskLogger, type Logger } from "@diego/kit";
import { toJson } from "@bufbuild/protobuf";
import { backoffDelay, int64AsIntegers, isTerminal, redactTask } from "@diego/models";
import { TaskSchema, type Task } from "@diego/proto";
import pLimit, { type LimitFunction } from "p-limit";
import type { BbsMetrics } from "../metrics/bbs-metrics.js";

/** The two transitions a callback makes; the controller provides them. */
export interface CallbackTransitions {
  /** COMPLETED → RESOLVING by the BBS; throws when the task is not COMPLETED (someone else resolves it). */
  resolve(guid: string): Promise<Task>;
  /** RESOLVING → removed by the BBS. */
  delete(guid: string): Promise<void>;
}

export interface CallbackSenderOptions {
  transitions: CallbackTransitions;
  /** Callbacks delivered at once (task_callback_workers). */
  workers: number;
  /** Deadline of one POST. */
  timeoutMs: number;
  logger: Logger;
  metrics?: BbsMetrics;
  /** Where callbacks may go (docs/security.md); default: the default policy. */
  egress?: EgressPolicy;
}

const ATTEMPTS = 3;
/** The waits between attempts: 250 ms, then 500 ms, jittered, at most 2 s. */
const RETRY_BACKOFF = { initialMs: 250, maxMs: 2_000 };

/**
 * Completion callbacks (docs/contract.md, completion callback): the task goes RESOLVING first (so only one sender and no
 * client resolves it at the same time), then its whole JSON is POSTed; 503, 504, a timeout or a
 * connection failure is tried again after a short jittered backoff, 3 attempts in all; any other
 * answer deletes the task.
 * When every attempt fails the task stays RESOLVING, and convergence returns it to COMPLETED after
 * kick_task_duration and submits it again. Every POST goes through the egress policy; one it refuses is
 * not delivered (no redirect is followed), and the task shows no more than that.
 */
export class CallbackSender {
  private readonly limit: LimitFunction;
  private readonly queued = new Set<string>();
  private stopped = false;
  private defaultEgress?: EgressPolicy;

  constructor(private readonly options: CallbackSenderOptions) {
    this.limit = pLimit(options.workers);
  }

  /** Queues the callback of a task that has a completion_callback_url (others are ignored). */
  submit(task: Pick<Task, "taskGuid" | "completionCallbackUrl">): void {
    if (this.stopped || !task.completionCallbackUrl || this.queued.has(task.taskGuid)) return;
    this.queued.add(task.taskGuid);
    void this.limit(() => this.deliver(task.taskGuid)).finally(() => this.queued.delete(task.taskGuid));
  }

  /** Callbacks queued or in flight. */
  get pending(): number {
    return this.queued.size;
  }

  /** Stops taking callbacks; waits for those in flight for up to graceMs. */
  async stop(graceMs = 5_000): Promise<void> {
    this.stopped = true;
    this.limit.clearQueue();
    const until = Date.now() + graceMs;
    while (this.limit.activeCount > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  }

  private async deliver(guid: string): Promise<void> {
    if (this.stopped) return;
    const { transitions, logger, metrics } = this.options;
    let task: Task;
    try {
      task = await transitions.resolve(guid);
    } catch (err) {
      // A terminal refusal means someone else resolves the task (or it is gone): nothing to say.
      if (!isTerminal(err)) {
        logger.warn({ taskGuid: guid, err: (err as Error).message }, "callback: could not resolve the task");
      }
      return;
    }
    const log = taskLogger(logger, task);
    const url = task.completionCallbackUrl;
    const body = callbackBody(task);
    const egress = this.options.egress ?? (this.defaultEgress ??= new EgressPolicy());
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      if (attempt > 1) await new Promise((r) => setTimeout(r, backoffDelay(attempt - 1, RETRY_BACKOFF)));
      if (this.stopped) return;
      let status: number;
      try {
        const res = await egressRequest(egress, url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body,
          timeoutMs: this.options.timeoutMs,
        });
        status = res.status;
        res.body.destroy();
      } catch (err) {
        if (err instanceof EgressDenied) {
          log.warn({ url, reason: err.message }, "callback refused by the egress policy; not delivered");
          break;
        }
        log.warn({ attempt, url, err: describe(err) }, "callback attempt failed");
        continue;
      }
      if (status === 503 || status === 504) {
        log.warn({ attempt, url, status }, "callback receiver busy");
        continue;
      }
      log.info({ url, status }, "callback delivered");
      metrics?.callbacksDelivered.inc();
      try {
        await transitions.delete(guid);
      } catch (err) {
        log.warn({ err: (err as Error).message }, "callback: could not delete the task after delivery");
      }
      return;
    }
    metrics?.callbacksFailed.inc();
    log.warn({ url, attempts: ATTEMPTS }, "callback failed; the task stays RESOLVING until convergence retries");
  }
}

function describe(err: unknown): string {
  const e = err as Error & { cause?: Error };
  if (e.name === "TimeoutError") return "timed out";
  return e.cause?.message ? `${e.message}: ${e.cause.message}` : e.message;
}

/**
 * The POST body: the task as taskToJsonText writes it (snake_case, `state` by name, int64 times as
 * JSON integers, no image_password, empty fields left out), except that `failed` is always there,
 * so that a receiver can test `failed === false`.
 */
export function callbackBody(task: Task): string {
  const json = toJson(TaskSchema, redactTask(task), { useProtoFieldName: true }) as Record<string, unknown>;
  return int64AsIntegers({ ...json, failed: task.failed });
}

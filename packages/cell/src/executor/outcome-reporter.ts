import { backoffDelay, isTerminal, type BackoffOptions } from "@diego/models";
import { taskLogger, type Logger } from "@diego/kit";
import type { CellMetrics } from "../metrics.js";
import type { OutcomeJournal } from "./outcome-journal.js";
import { completeRequest, rejectRequest, type OutcomeRecord } from "./outcome-record.js";
import type { LifecycleClient } from "./task-runner.js";

export interface ReporterOptions {
  cellId: string;
  journal: OutcomeJournal;
  lifecycle: LifecycleClient;
  /** Deadline of each CompleteTask / RejectTask call. */
  callTimeoutMs: number;
  /** Waits between attempts: exponential from initialMs, capped at maxMs, jittered. */
  backoff: BackoffOptions;
  metrics: CellMetrics;
  logger: Logger;
}

/** What to do after one attempt (pure): the BBS took it, refused it for good, or may take it later. */
export function afterAttempt(err: unknown): "accepted" | "refused" | "retry" {
  if (err === undefined) return "accepted";
  return isTerminal(err) ? "refused" : "retry";
}

interface Pending {
  record: OutcomeRecord;
  attempt: number;
  /** Ends the current wait early (a reconcile pass saw the BBS answer). */
  wake?: () => void;
  forgotten: boolean;
  done: Promise<void>;
}

/**
 * Reports every journaled outcome to the BBS until it accepts it or refuses it for good, however long
 * the BBS is away; only then is the journal entry deleted (docs/reliability.md, "The cell keeps every
 * outcome"). One loop per task; each call has a deadline; between attempts a capped, jittered backoff.
 */
export class OutcomeReporter {
  private readonly pending = new Map<string, Pending>();
  private stopped = false;

  constructor(private readonly o: ReporterOptions) {}

  /** Task guids whose outcome is still owed to the BBS. */
  guids(): string[] {
    return [...this.pending.keys()];
  }

  has(taskGuid: string): boolean {
    return this.pending.has(taskGuid);
  }

  /** Starts reporting a journaled outcome (a second submit of the same task replaces the record). */
  submit(record: OutcomeRecord): void {
    const existing = this.pending.get(record.taskGuid);
    if (existing) {
      existing.record = record;
      existing.wake?.();
      return;
    }
    const p: Pending = { record, attempt: 0, forgotten: false, done: Promise.resolve() };
    this.pending.set(record.taskGuid, p);
    p.done = this.loop(p);
  }

  /** Tries again now instead of at the end of the current wait. */
  kick(taskGuid: string): void {
    this.pending.get(taskGuid)?.wake?.();
  }

  /** Gives an outcome up without reporting it (the BBS has finished or deleted the task) and deletes it. */
  async forget(taskGuid: string): Promise<void> {
    const p = this.pending.get(taskGuid);
    if (p) {
      p.forgotten = true;
      p.wake?.();
      await p.done;
    } else await this.o.journal.delete(taskGuid);
  }

  /** Waits up to timeoutMs for every outcome to be settled. */
  async flush(timeoutMs: number): Promise<void> {
    const all = Promise.all([...this.pending.values()].map((p) => p.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Stops every loop; what is not reported stays in the journal for the next start. */
  stop(): void {
    this.stopped = true;
    for (const p of this.pending.values()) p.wake?.();
  }

  private async loop(p: Pending): Promise<void> {
    const guid = p.record.taskGuid;
    const log = taskLogger(this.o.logger, { taskGuid: guid, cellId: this.o.cellId });
    while (!this.stopped && !p.forgotten) {
      const record = p.record;
      let err: unknown;
      try {
        await this.send(record);
      } catch (e) {
        err = e ?? new Error("report failed");
      }
      if (this.stopped) return;
      if (p.forgotten) break;
      const verdict = afterAttempt(err);
      if (verdict === "retry") {
        p.attempt++;
        const wait = backoffDelay(p.attempt, this.o.backoff);
        // The first failure is worth a warning; the rest go on quietly until the BBS answers.
        if (p.attempt === 1 || p.attempt % 20 === 0)
          log.warn(
            { err: (err as Error).message, attempt: p.attempt, retryInMs: wait },
            "cannot report the task to the BBS yet; retrying",
          );
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, wait);
          function done() {
            clearTimeout(timer);
            resolve();
          }
          p.wake = done;
        });
        p.wake = undefined;
        continue;
      }
      if (record !== p.record) continue; // replaced meanwhile: report the newer one
      if (verdict === "accepted") this.accepted(record, log);
      else log.info({ reason: (err as Error).message }, "BBS refused the report for good");
      break;
    }
    if (this.stopped) return;
    try {
      await this.o.journal.delete(guid);
    } catch (err) {
      log.error({ err }, "cannot delete the journaled outcome; it will be reported again at the next start");
    }
    this.pending.delete(guid);
  }

  private async send(record: OutcomeRecord): Promise<void> {
    const opts = { timeoutMs: this.o.callTimeoutMs };
    if (record.kind === "complete") await this.o.lifecycle.completeTask(completeRequest(record, this.o.cellId), opts);
    else await this.o.lifecycle.rejectTask(rejectRequest(record, this.o.cellId), opts);
  }

  private accepted(record: OutcomeRecord, log: Logger): void {
    if (record.kind === "complete") {
      (record.failed ? this.o.metrics.tasksFailed : this.o.metrics.tasksSucceeded).inc(record.labels);
      log.info({ failed: record.failed, failureReason: record.failureReason }, "task completed");
    } else log.info({ reason: record.reason }, "task rejected");
  }
}

import { schedule, type ScheduleResult } from "@diego/auction";
import { taskLogger, type Logger } from "@diego/kit";
import { DiegoError, FailureReason, truncateReason } from "@diego/models";
import type { CellPresence } from "@diego/proto";
import pLimit from "p-limit";
import { Batcher, type TaskWork } from "./batcher.js";
import { fetchCellStates } from "./fetch-cell-states.js";
import type { AuctioneerMetrics } from "./metrics.js";
import type { BbsPort, CellsPort } from "./ports.js";
import { TrackedTasks } from "./tracked-tasks.js";

export interface AuctionRunnerOptions {
  bbs: BbsPort;
  cells: CellsPort;
  logger: Logger;
  metrics?: AuctioneerMetrics;
  startingContainerWeight: number;
  /** Tasks waiting for capacity are auctioned again this often. */
  retryIntervalMs: number;
  waitingTaskExpiryMs: number;
  maxCellRefusals: number;
  maxConcurrentRequests: number;
  /** Pause after ListCells fails. */
  bbsRetryMs?: number;
  nowMs?: () => number;
}

/** A rejection to send: `permanent` when no live cell can ever run the task (the BBS fails it at once). */
interface Rejection {
  reason: string;
  permanent: boolean;
}

/** What one auction did, for logs and tests. */
export interface AuctionReport {
  tasks: number;
  cells: number;
  placed: number;
  rejected: number;
  waiting: number;
  refused: number;
}

/**
 * The auction loop of the active auctioneer (docs/architecture.md, place; with the differences below):
 *
 * 1. waits for requests (or for the retry time of tasks that wait for capacity);
 * 2. lists the live cells from the BBS (on error: pause, keep the batch);
 * 3. fetches every cell's state in parallel with a deadline;
 * 4. takes the batch (requests that came meanwhile included) plus the tasks it holds, one per guid;
 * 5. schedules (pure), then sends each cell its work in one Perform;
 * 6. rejects at once, through the BBS, the tasks no live cell could ever run, marked permanent (the BBS
 *    fails them at once with the scheduler's text: one round);
 *    keeps the tasks that only wait for free capacity and auctions them again every retry interval,
 *    without burning their retries (Diego rejects those too, every round); what a cell refused at
 *    Perform is placed elsewhere next round (the refusing cells excluded), or rejected with the
 *    cell's reason when no other cell can take it or `maxCellRefusals` cells refused it.
 *
 * When no cell answers at all, nothing is rejected (`unable to communicate to compatible cells` is
 * only logged): a transient outage must not burn the tasks' retries.
 */
export class AuctionRunner {
  readonly batcher = new Batcher();
  private readonly tracked: TrackedTasks;
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly now: () => number;
  private active = false;
  private stopped = false;
  private loop?: Promise<void>;
  /** When tracked tasks are due for another auction. */
  private retryAt = Infinity;
  private generation = 0;
  private lastUnreachableWarning = 0;
  private readonly warnedCells = new Map<string, number>();
  private readonly roundListeners = new Set<(report: AuctionReport) => void>();

  constructor(private readonly options: AuctionRunnerOptions) {
    this.tracked = new TrackedTasks(options.waitingTaskExpiryMs);
    this.limit = pLimit(options.maxConcurrentRequests);
    this.now = options.nowMs ?? Date.now;
  }

  /** Queues tasks for the next auction; returns how many tasks wait for it. */
  enqueue(tasks: readonly TaskWork[]): number {
    return this.batcher.add(tasks);
  }

  /** Tasks held between auctions (waiting for capacity or refused by a cell). */
  get waiting(): number {
    return this.tracked.size;
  }

  get isActive(): boolean {
    return this.active;
  }

  start(): void {
    this.loop ??= this.run();
  }

  /** Becomes the active auctioneer: auctions run from now on. */
  activate(): void {
    if (this.active) return;
    this.active = true;
    this.generation++;
    this.batcher.wake();
  }

  /**
   * Stops auctioning (the lock was lost): forgets the queued and held tasks. They are PENDING in the BBS,
   * which sends them to the new active auctioneer on its next convergence pass.
   */
  deactivate(): void {
    if (!this.active) return;
    this.active = false;
    this.generation++;
    this.batcher.clear();
    this.tracked.clear();
    this.retryAt = Infinity;
    this.options.metrics?.tasksWaiting.set(0);
    this.batcher.wake();
  }

  /** Called after every auction (tests and the benchmark watch progress with it). */
  onRound(listener: (report: AuctionReport) => void): () => void {
    this.roundListeners.add(listener);
    return () => this.roundListeners.delete(listener);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.batcher.wake();
    await this.loop;
    this.options.cells.close();
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const now = this.now();
      const due = this.active && this.tracked.size > 0 && now >= this.retryAt;
      if (!this.active || (this.batcher.size === 0 && !due)) {
        const wait = this.active && this.tracked.size > 0 ? this.retryAt - now : 60_000;
        await this.batcher.waitForWork(wait);
        continue;
      }
      try {
        await this.round();
      } catch (err) {
        this.options.logger.error({ err }, "auction failed");
        await sleep(this.options.bbsRetryMs ?? 1_000);
      }
    }
  }

  /** One auction. */
  async round(): Promise<void> {
    const { logger, metrics, bbs, cells } = this.options;
    const generation = this.generation;
    const started = performance.now();
    let presences: CellPresence[];
    try {
      presences = await bbs.listCells();
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "cannot list cells from the BBS; the auction waits");
      this.retryAt = this.now() + (this.options.bbsRetryMs ?? 1_000);
      await sleep(this.options.bbsRetryMs ?? 1_000);
      return;
    }
    cells.retain(presences);
    const fetchStarted = performance.now();
    const states = await fetchCellStates(presences, cells, this.limit, logger, this.warnedCells);
    metrics?.fetchStatesDuration.observe((performance.now() - fetchStarted) / 1000);
    metrics?.failedCellStateRequests.inc(states.failed);
    if (generation !== this.generation) return;

    const now = this.now();
    this.tracked.merge(this.batcher.drain(), now);
    for (const guid of this.tracked.expire(now))
      logger.info({ taskGuid: guid }, "forgot a waiting task the BBS no longer asks about");
    const batch = this.tracked.all();
    if (batch.length === 0) return;

    const scheduleStarted = performance.now();
    const result = schedule(
      batch.map((t) => t.task),
      states.answered.map((a) => a.state),
      {
        startingContainerWeight: this.options.startingContainerWeight,
        unreachableCells: states.unreachable,
        excludedCells: this.tracked.exclusions(),
      },
    );
    metrics?.scheduleDuration.observe((performance.now() - scheduleStarted) / 1000);

    const presenceOf = new Map(states.answered.map((a) => [a.presence.cellId, a.presence]));
    const toReject = new Map<string, Rejection>();
    let placed = 0;
    let refused = 0;
    await Promise.all(
      result.placements.map((placement) =>
        this.limit(async () => {
          const presence = presenceOf.get(placement.cellId)!;
          try {
            const failed = await cells.perform(presence, placement.tasks);
            const refusedGuids = new Map(failed.map((f) => [f.taskGuid, f.reason || "the cell refused the task"]));
            for (const task of placement.tasks) {
              const reason = refusedGuids.get(task.taskGuid);
              if (reason === undefined) {
                this.tracked.delete(task.taskGuid);
                placed++;
                continue;
              }
              refused++;
              const count = this.tracked.refused(task.taskGuid, { cellId: placement.cellId, reason });
              taskLogger(logger, { taskGuid: task.taskGuid, domain: task.domain, cellId: placement.cellId }).info(
                { reason },
                "cell refused the task",
              );
              if (count >= this.options.maxCellRefusals) toReject.set(task.taskGuid, { reason, permanent: false });
            }
          } catch (err) {
            // The cell may or may not have taken the work. Count it as a refusal: the tasks go to another
            // cell next auction. Should the cell have reserved them after all, only one cell's StartTask
            // can win, so a task still runs at most once.
            const reason = `cell ${placement.cellId} did not take the work: ${(err as Error).message}`;
            logger.warn(
              { cellId: placement.cellId, tasks: placement.tasks.length, err: (err as Error).message },
              "sending work to the cell failed; the tasks go to another cell",
            );
            for (const task of placement.tasks) {
              refused++;
              if (
                this.tracked.refused(task.taskGuid, { cellId: placement.cellId, reason }) >=
                this.options.maxCellRefusals
              )
                toReject.set(task.taskGuid, { reason, permanent: false });
            }
          }
        }),
      ),
    );
    if (generation !== this.generation) return;
    metrics?.taskAuctionsStarted.inc(placed);
    metrics?.cellRefusals.inc(refused);

    let unreachable = 0;
    for (const failure of result.failures) {
      const held = this.tracked.get(failure.task.taskGuid);
      const lastRefusal = held?.refusals[held.refusals.length - 1];
      if (failure.permanent) toReject.set(failure.task.taskGuid, { reason: failure.reason, permanent: true });
      else if (failure.cause === "unreachable") unreachable++;
      else if (lastRefusal) toReject.set(failure.task.taskGuid, { reason: lastRefusal.reason, permanent: false });
      else
        taskLogger(logger, { taskGuid: failure.task.taskGuid, domain: failure.task.domain }).debug(
          { reason: failure.reason },
          "task waits for free capacity",
        );
    }
    if (unreachable > 0 && now - this.lastUnreachableWarning > 10_000) {
      this.lastUnreachableWarning = now;
      logger.warn(
        { tasks: unreachable, cells: presences.length },
        `${FailureReason.unableToCommunicate}: the tasks wait (their retries are not used up)`,
      );
    }

    const rejected = await this.reject(toReject, generation);
    if (generation !== this.generation) return;

    const report: AuctionReport = {
      tasks: batch.length,
      cells: states.answered.length,
      placed,
      rejected,
      waiting: this.tracked.size,
      refused,
    };
    metrics?.tasksWaiting.set(this.tracked.size);
    metrics?.auctionDuration.observe((performance.now() - started) / 1000);
    logger.debug(report, "auction done");
    // Refused work goes again at once (to other cells); tasks waiting for capacity after the retry interval.
    this.retryAt =
      this.tracked.size === 0 ? Infinity : refused > 0 ? this.now() : this.now() + this.options.retryIntervalMs;
    for (const listener of this.roundListeners) listener(report);
    logResult(logger, result, placed);
  }

  private async reject(toReject: Map<string, Rejection>, generation: number): Promise<number> {
    const { bbs, logger, metrics } = this.options;
    let rejected = 0;
    await Promise.all(
      [...toReject].map(([taskGuid, { reason, permanent }]) =>
        this.limit(async () => {
          if (generation !== this.generation) return;
          const held = this.tracked.get(taskGuid);
          const log = taskLogger(logger, { taskGuid, domain: held?.task.domain });
          try {
            const res = await bbs.rejectTask(taskGuid, truncateReason(reason), permanent);
            this.tracked.delete(taskGuid);
            rejected++;
            metrics?.taskAuctionsFailed.inc();
            log.info(
              { reason, permanent, failed: res.failed },
              res.failed ? "task cannot be placed: it failed" : "task cannot be placed: rejected",
            );
          } catch (err) {
            if (
              DiegoError.is(err, "NOT_FOUND") ||
              DiegoError.is(err, "FAILED_PRECONDITION") ||
              DiegoError.is(err, "INVALID_ARGUMENT")
            ) {
              // No longer pending (cancelled, deleted, claimed): nothing to do.
              this.tracked.delete(taskGuid);
              log.info({ reason, err: (err as Error).message }, "rejecting the task was refused by the BBS; dropped");
            } else
              log.warn({ reason, err: (err as Error).message }, "rejecting the task failed; tried again next auction");
          }
        }),
      ),
    );
    return rejected;
  }
}

function logResult(logger: Logger, result: ScheduleResult<TaskWork>, placed: number): void {
  if (!logger.isLevelEnabled("debug")) return;
  for (const p of result.placements)
    logger.debug({ cellId: p.cellId, tasks: p.tasks.map((t) => t.taskGuid) }, "work sent");
  logger.debug({ placed, failed: result.failures.length }, "placement");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

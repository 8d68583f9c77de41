import { schedule, type ScheduleResult } from "@diego/auction";
import { taskLogger, type Logger } from "@diego/kit";
import { backoffDelay, DiegoError, FailureReason, truncateReason, type BackoffOptions } from "@diego/models";
import pLimit from "p-limit";
import { Batcher, type TaskWork } from "./batcher.js";
import { CellCache } from "./cell-cache.js";
import { fetchCellStates } from "./fetch-cell-states.js";
import type { AuctioneerMetrics } from "./metrics.js";
import type { BbsPort, CellsPort } from "./ports.js";
import { planRound, type PerformAnswer, type Rejection, type RoundPlan } from "./round-plan.js";
import { TrackedTasks, type TrackedTask } from "./tracked-tasks.js";

export interface AuctionRunnerOptions {
  bbs: BbsPort;
  cells: CellsPort;
  logger: Logger;
  metrics?: AuctioneerMetrics;
  startingContainerWeight: number;
  /** The first wait of a task kept for capacity or for cells to answer; doubled each round, jittered. */
  retryIntervalMs: number;
  /** The cap of that wait. */
  maxRetryIntervalMs: number;
  /** How often ListCells runs (new and gone cells). */
  cellListIntervalMs: number;
  /** How often every cell's State is fetched again as a check of the cache. */
  cellStateRefreshIntervalMs: number;
  waitingTaskExpiryMs: number;
  maxCellRefusals: number;
  maxConcurrentRequests: number;
  nowMs?: () => number;
  /** Uniform in [0, 1), for the jitter of waits. */
  random?: () => number;
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
 * The auction loop of the active auctioneer (docs/architecture.md, auctioneer; with the differences below).
 * Each round:
 *
 * 1. waits for requests, or for the time the held tasks are due;
 * 2. brings the cell cache up to date (`refreshCells`): the cells it doubts, not every cell every time;
 * 3. takes the batch (requests that came meanwhile included) plus the held tasks that are due, one per guid;
 * 4. schedules (pure) on the cached states, then sends each cell its work in one Perform;
 * 5. decides with the pure `planRound` (round-plan.ts) and does what it says: reserves the accepted work in
 *    the cache, fetches the refusing cells again, keeps tasks with their backoff, and rejects through the
 *    BBS (permanent when no live cell can ever run the task: the BBS fails it at once).
 *
 * When no cell answers at all, nothing is rejected (`unable to communicate to compatible cells` is
 * only logged): a transient outage must not burn the tasks' retries.
 */
export class AuctionRunner {
  readonly batcher = new Batcher();
  private readonly tracked: TrackedTasks;
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly backoff: BackoffOptions;
  /** Every live cell's state as last fetched, adjusted by the work placed since. */
  readonly cache = new CellCache();
  private listFailures = 0;
  private listRetryAt = -Infinity;
  private wakePause?: () => void;
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
    this.random = options.random ?? Math.random;
    this.backoff = { initialMs: options.retryIntervalMs, maxMs: options.maxRetryIntervalMs };
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
    // A gap: whatever the cache held may be old; the first round fetches every cell.
    this.cache.invalidate();
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
    this.cache.invalidate();
    this.wakePause?.();
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
    this.wakePause?.();
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
        this.cache.invalidate();
        await this.pause(this.options.retryIntervalMs);
      }
    }
  }

  /** One auction. */
  async round(): Promise<void> {
    const { logger, metrics, cells } = this.options;
    const generation = this.generation;
    const started = performance.now();
    if (!(await this.refreshCells(generation))) return;
    if (generation !== this.generation) return;

    const now = this.now();
    this.tracked.merge(this.batcher.drain(), now);
    for (const guid of this.tracked.expire(now))
      logger.info({ taskGuid: guid }, "forgot a waiting task the BBS no longer asks about");
    const batch = this.tracked.due(now);
    if (batch.length === 0) {
      this.retryAt = this.tracked.nextDueMs();
      return;
    }

    const { answered, unreachable } = this.cache.snapshot();
    const scheduleStarted = performance.now();
    const result = schedule(
      batch.map((t) => t.task),
      answered,
      {
        startingContainerWeight: this.options.startingContainerWeight,
        unreachableCells: unreachable,
        excludedCells: this.tracked.exclusions(),
      },
    );
    metrics?.scheduleDuration.observe((performance.now() - scheduleStarted) / 1000);

    const answers = new Map<string, PerformAnswer>();
    await Promise.all(
      result.placements.map((placement) =>
        this.limit(async () => {
          const presence = this.cache.presence(placement.cellId)!;
          try {
            answers.set(placement.cellId, { refused: await cells.perform(presence, placement.tasks) });
          } catch (err) {
            // The cell may or may not have taken the work: counted as a refusal, the tasks go to another cell
            // next round. Should the cell have reserved them after all, only one cell's StartTask can win, so a
            // task still runs at most once.
            answers.set(placement.cellId, { error: (err as Error).message });
            logger.warn(
              { cellId: placement.cellId, tasks: placement.tasks.length, err: (err as Error).message },
              "sending work to the cell failed; the tasks go to another cell",
            );
          }
        }),
      ),
    );
    if (generation !== this.generation) return;

    const held = new Map(batch.map((t) => [t.task.taskGuid, { attempts: t.attempts, refusals: t.refusals }]));
    const plan = planRound({
      schedule: result,
      held,
      answers,
      maxCellRefusals: this.options.maxCellRefusals,
      backoff: this.backoff,
      nowMs: this.now(),
      random: this.random,
    });
    this.apply(plan, batch);
    metrics?.taskAuctionsStarted.inc(plan.placed.reduce((n, p) => n + p.tasks.length, 0));
    metrics?.cellRefusals.inc(plan.refused);
    if (plan.unreachable > 0 && now - this.lastUnreachableWarning > 10_000) {
      this.lastUnreachableWarning = now;
      logger.warn(
        { tasks: plan.unreachable, cells: this.cache.size },
        `${FailureReason.unableToCommunicate}: the tasks wait (their retries are not used up)`,
      );
    }

    const rejected = await this.reject(plan.reject, generation);
    if (generation !== this.generation) return;

    const report: AuctionReport = {
      tasks: batch.length,
      cells: answered.length,
      placed: plan.placed.reduce((n, p) => n + p.tasks.length, 0),
      rejected,
      waiting: this.tracked.size,
      refused: plan.refused,
    };
    metrics?.tasksWaiting.set(this.tracked.size);
    metrics?.auctionDuration.observe((performance.now() - started) / 1000);
    logger.debug(report, "auction done");
    this.retryAt = this.tracked.nextDueMs();
    for (const listener of this.roundListeners) listener(report);
    logResult(logger, result, report.placed);
  }

  /**
   * Brings the cell cache up to date for a round: ListCells every `cellListIntervalMs` (all cells fetched
   * again every `cellStateRefreshIntervalMs`, and after a gap), then State from the cells it doubts: new,
   * moved, refused work, unreachable ones whose backoff passed, and, when tasks waiting for capacity are
   * due, those not fetched for a retry interval. False when there is no picture of the cells to auction on.
   */
  private async refreshCells(generation: number): Promise<boolean> {
    const { bbs, cells, logger, metrics } = this.options;
    const now = this.now();
    const full = now - this.cache.fullFetchAtMs >= this.options.cellStateRefreshIntervalMs;
    if (full || now - this.cache.listedAtMs >= this.options.cellListIntervalMs) {
      if (now >= this.listRetryAt) {
        try {
          const presences = await bbs.listCells();
          if (generation !== this.generation) return false;
          cells.retain(presences);
          this.cache.setPresences(presences, this.now());
          if (full || this.listFailures > 0) {
            this.cache.markAllStale();
            this.cache.fullFetchAtMs = this.now();
          }
          this.listFailures = 0;
          this.listRetryAt = -Infinity;
        } catch (err) {
          this.listFailures++;
          this.listRetryAt = this.now() + backoffDelay(this.listFailures, this.backoff, this.random);
          logger.warn(
            { err: (err as Error).message, cachedCells: this.cache.size },
            this.cache.fullFetchAtMs === -Infinity
              ? "cannot list cells from the BBS; the auction waits"
              : "cannot list cells from the BBS; auctioning on the cached cells",
          );
          if (this.cache.fullFetchAtMs === -Infinity) {
            await this.pause(this.listRetryAt - this.now());
            return false;
          }
        }
      } else if (this.cache.fullFetchAtMs === -Infinity) {
        await this.pause(this.listRetryAt - this.now());
        return false;
      }
    }
    const waitingDue = this.tracked.due(now).some((t) => t.attempts > 0 && t.refusals.length === 0);
    if (waitingDue) this.cache.markStaleOlderThan(now - this.options.retryIntervalMs);
    const due = this.cache.toFetch(now);
    if (due.length === 0) return true;
    const fetchStarted = performance.now();
    const fetched = await fetchCellStates(due, cells, this.limit, logger, this.warnedCells);
    metrics?.fetchStatesDuration.observe((performance.now() - fetchStarted) / 1000);
    metrics?.cellStateRequests.inc(due.length);
    metrics?.failedCellStateRequests.inc(fetched.failed.length + fetched.otherId);
    if (generation !== this.generation) return false;
    const stored = this.now();
    for (const { presence, state } of fetched.answered) this.cache.stored(presence.cellId, state, stored);
    for (const presence of fetched.failed)
      this.cache.failed(presence.cellId, (n) => stored + backoffDelay(n, this.backoff, this.random));
    return true;
  }

  /** Applies a round's plan to the held tasks and the cell cache (the rejections are sent after). */
  private apply(plan: RoundPlan, batch: readonly TrackedTask[]): void {
    const { logger } = this.options;
    for (const p of plan.placed) {
      this.cache.reserve(p.cellId, p.tasks);
      for (const t of p.tasks) this.tracked.delete(t.taskGuid);
    }
    for (const cellId of plan.refresh) this.cache.markStale(cellId);
    const domains = new Map(batch.map((t) => [t.task.taskGuid, t.task.domain]));
    for (const k of plan.keep) {
      this.tracked.keep(k.taskGuid, k);
      const log = taskLogger(logger, { taskGuid: k.taskGuid, domain: domains.get(k.taskGuid) });
      if (k.refusal) log.info({ cellId: k.refusal.cellId, reason: k.refusal.reason }, "cell refused the task");
      else if (k.cause === "capacity")
        log.debug({ retryInMs: k.retryAtMs - this.now() }, "task waits for free capacity");
    }
  }

  /** Waits `ms`, cut short by stop() or deactivate(). */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.wakePause = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      this.wakePause = done;
    });
  }

  private async reject(rejections: readonly Rejection[], generation: number): Promise<number> {
    const { bbs, logger, metrics } = this.options;
    let rejected = 0;
    await Promise.all(
      rejections.map(({ taskGuid, reason, permanent }) =>
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
            } else if (held) {
              const attempts = held.attempts + 1;
              this.tracked.keep(taskGuid, {
                attempts,
                retryAtMs: this.now() + backoffDelay(attempts, this.backoff, this.random),
              });
              log.warn({ reason, err: (err as Error).message }, "rejecting the task failed; tried again later");
            }
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

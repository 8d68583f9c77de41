import type { Logger } from "@diego/kit";
import { isTerminal } from "@diego/models";
import { TaskState } from "@diego/proto";
import pLimit from "p-limit";
import type { CellLiveness } from "../cells/cell-liveness.js";
import type { PresenceStore } from "../cells/presence-store.js";
import type { ConvergenceTransition, TaskController } from "../controller/task-controller.js";
import type { Leadership } from "../leader/leadership.js";
import type { BbsMetrics } from "../metrics/bbs-metrics.js";
import type { TaskStore } from "../store/task-store.js";
import { planConvergence, type ConvergenceDurations, type ConvergencePlan } from "./plan.js";

export interface ConvergerOptions {
  store: TaskStore;
  presence: PresenceStore;
  /** Tells lost cells from held ones (the BBS's own isolation). */
  liveness: CellLiveness;
  controller: TaskController;
  leadership: Leadership;
  durations: ConvergenceDurations;
  /** Time between passes (converge_repeat_interval), measured from the end of one to the start of the next. */
  intervalMs: number;
  /** Transitions in flight at once. */
  workers: number;
  logger: Logger;
  metrics?: BbsMetrics;
  nowMs?: () => number;
}

export interface ConvergenceReport {
  plan: ConvergencePlan;
  /** False when presence could not be read (no task was failed for a lost cell). */
  cellsKnown: boolean;
  applied: number;
}

/**
 * Runs convergence on the leader only: a pass as soon as this instance becomes leader, then one
 * every interval while it stays leader. Each pass plans with the pure planConvergence and applies
 * the plan through the controller (every step a CAS; a task that moved meanwhile is left alone).
 */
export class Converger {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private unsubscribe?: () => void;
  private stopped = false;

  constructor(private readonly o: ConvergerOptions) {}

  start(): void {
    this.unsubscribe = this.o.leadership.onChange((leader) => (leader ? this.schedule(0) : this.cancel()));
    if (this.o.leadership.isLeader()) this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    this.cancel();
    await this.running;
  }

  private cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(delayMs: number): void {
    this.cancel();
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.o.leadership.isLeader() || this.stopped) return;
      this.running = this.runOnce()
        .catch((err: unknown) => this.o.logger.error({ err }, "convergence pass failed"))
        .finally(() => {
          this.running = undefined;
          if (this.o.leadership.isLeader()) this.schedule(this.o.intervalMs);
        });
    }, delayMs);
  }

  /** One pass (exported for tests). */
  async runOnce(): Promise<ConvergenceReport> {
    const { store, presence, controller, logger, metrics } = this.o;
    const started = process.hrtime.bigint();
    let liveCells: string[] | undefined;
    let lostCells: Set<string> | undefined;
    const cellOf = new Map<string, string>();
    for (const e of store.entries())
      if (e.state === TaskState.CLAIMED || e.state === TaskState.RUNNING) cellOf.set(e.guid, e.cellId);
    try {
      liveCells = (await presence.list()).map((c) => c.cellId);
      const { liveness } = this.o;
      liveness.sawList(liveCells.map((cellId) => ({ cellId })));
      liveness.know(cellOf.values());
      lostCells = new Set(liveness.decide().lost);
    } catch (err) {
      logger.warn(
        { err: (err as Error).message },
        "convergence: live cells unknown; no task is failed for a lost cell this pass",
      );
    }
    const nowMs = (this.o.nowMs ?? Date.now)();
    const plan = planConvergence(store.entries(), lostCells, nowMs, this.o.durations);
    const limit = pLimit(this.o.workers);
    let applied = 0;
    const converge = (guid: string, name: ConvergenceTransition, onCell?: string) =>
      limit(async () => {
        try {
          await controller.converge(guid, name, onCell);
          applied++;
        } catch (err) {
          if (isTerminal(err)) return; // it moved on meanwhile
          logger.warn({ taskGuid: guid, err: (err as Error).message }, `convergence: ${name} failed`);
        }
      });
    await Promise.all([
      ...plan.expirePending.map((g) => converge(g, "expire")),
      ...plan.cellLost.map((g) => converge(g, "cellLost", cellOf.get(g))),
      ...plan.demote.map((g) => converge(g, "demote")),
      ...plan.expireCompleted.map((g) => converge(g, "expireCompleted")),
    ]);
    applied += await controller.auctionAgain(plan.auction);
    for (const guid of plan.callbacks) if (await controller.callbackAgain(guid)) applied++;
    await controller.pruneLogTails().catch((err: unknown) => logger.warn({ err }, "convergence: log tails not pruned"));

    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics?.convergenceRuns.inc();
    metrics?.convergenceDuration.observe(seconds);
    metrics?.convergenceKicked.inc(
      plan.expirePending.length +
        plan.cellLost.length +
        plan.demote.length +
        plan.auction.length +
        plan.callbacks.length,
    );
    metrics?.convergencePruned.inc(plan.expireCompleted.length);
    const counts = Object.fromEntries(Object.entries(plan).map(([k, v]) => [k, (v as string[]).length]));
    logger.info({ ...counts, seconds, liveCells: liveCells?.length }, "convergence pass done");
    return { plan, cellsKnown: liveCells !== undefined, applied };
  }
}

import { create } from "@bufbuild/protobuf";
import { compatible, DRAINING_REASON, presenceOf, type AdmitCell } from "@diego/models";
import { CellPresenceSchema, type CellPresence, type TaskService } from "@diego/proto";
import { cellv1 } from "@diego/proto";
import type { Logger, ServiceClient } from "@diego/kit";
import { ImageHomes } from "./actions/container-files.js";
import type { DownloadCache } from "./actions/download-cache.js";
import { CapacityLedger, type Capacity } from "./capacity/capacity-ledger.js";
import { claimedTaskRefusal } from "./executor/claimed-task-refusal.js";
import type { OutcomeJournal } from "./executor/outcome-journal.js";
import { isOutcome, type JournalRecord } from "./executor/outcome-record.js";
import type { OutcomeReporter } from "./executor/outcome-reporter.js";
import {
  TaskRunner,
  type LifecycleClient,
  type RunnerEnv,
  type RunnerLimits,
  type StopReason,
} from "./executor/task-runner.js";
import type { TaskLogStore } from "./logs/task-log-store.js";
import type { CellMetrics } from "./metrics.js";
import type { ContainerPool } from "./runtime/container-pool.js";
import type { ContainerRuntime } from "./runtime/container-runtime.js";

export type TaskClient = ServiceClient<(typeof TaskService)["method"]>;

export interface CellIdentity {
  cellId: string;
  zone: string;
  stacks: string[];
  /** preloaded NAME → local image */
  preloaded: Record<string, string>;
  placementTags: string[];
  optionalPlacementTags: string[];
  /** Whether this cell runs privileged tasks (--allow-privileged, and a host that can give them); default false. */
  allowPrivileged?: boolean;
}

export interface CellParts {
  identity: CellIdentity;
  total: Capacity;
  runtime: ContainerRuntime;
  lifecycle: LifecycleClient;
  logs: TaskLogStore;
  cache: DownloadCache;
  limits: RunnerLimits;
  /** Durable outcomes (and what a restarted cell needs to follow a running task). */
  journal: OutcomeJournal;
  /** Built with the cell's metrics: reports journaled outcomes to the BBS. */
  reporter: (metrics: CellMetrics) => OutcomeReporter;
  metrics: (capacity: () => { total: Capacity; available: Capacity }) => CellMetrics;
  logger: Logger;
  /** Ready containers for claimed tasks (docs/performance.md, "The container pool"); none when off. */
  pool?: ContainerPool;
}

export { DRAINING_REASON };

/** The rep's state: the capacity ledger, the task runners, draining. Handlers and the reconciler act through it. */
export class Cell {
  readonly ledger: CapacityLedger;
  readonly runners = new Map<string, TaskRunner>();
  readonly metrics: CellMetrics;
  /** Outcomes owed to the BBS (journaled) by tasks that no longer have a runner here. */
  readonly reporter: OutcomeReporter;
  draining = false;
  private readonly idle = new Set<() => void>();

  constructor(readonly parts: CellParts) {
    this.ledger = new CapacityLedger(parts.total);
    this.metrics = parts.metrics(() => ({ total: this.ledger.total, available: this.ledger.available() }));
    this.reporter = parts.reporter(this.metrics);
  }

  get id(): string {
    return this.parts.identity.cellId;
  }

  rootfsProviders(): Array<{ scheme: string; names: string[] }> {
    return [
      { scheme: "docker", names: [] },
      { scheme: "preloaded", names: Object.keys(this.parts.identity.preloaded).sort() },
    ];
  }

  /** What this cell offers, as admission judges it. */
  offer(): AdmitCell {
    const { identity } = this.parts;
    return {
      stacks: identity.stacks,
      rootfsProviders: this.rootfsProviders(),
      placementTags: identity.placementTags,
      optionalPlacementTags: identity.optionalPlacementTags,
      allowPrivileged: identity.allowPrivileged ?? false,
    };
  }

  state(): cellv1.CellState {
    const { identity } = this.parts;
    const runners = [...this.runners.values()];
    const offer = this.offer();
    return create(cellv1.CellStateSchema, {
      cellId: identity.cellId,
      zone: identity.zone,
      stacks: identity.stacks,
      rootfsProviders: this.rootfsProviders(),
      placementTags: identity.placementTags,
      optionalPlacementTags: identity.optionalPlacementTags,
      allowPrivileged: offer.allowPrivileged,
      total: this.ledger.total,
      available: this.ledger.available(),
      tasks: runners.map((r) => r.work),
      startingContainerCount: runners.filter((r) => r.starting).length,
      draining: this.draining,
      pooledContainerCount: this.parts.pool?.size() ?? 0,
    });
  }

  presence(address: string): CellPresence {
    return create(CellPresenceSchema, presenceOf(this.state(), address));
  }

  /**
   * Reserves and starts each task it can take; returns the others with the reason. The cell admits again what
   * the auction placed (the caller's TaskWork is not trusted): compatibility here, fit in the ledger (both halves of admit()).
   */
  perform(tasks: readonly cellv1.TaskWork[]): Array<{ taskGuid: string; reason: string }> {
    const failed: Array<{ taskGuid: string; reason: string }> = [];
    const offer = this.offer();
    for (const work of tasks) {
      if (this.runners.has(work.taskGuid)) continue;
      const verdict = this.draining ? undefined : compatible(work, offer);
      const admission = verdict?.admitted ? this.ledger.reserve(work) : verdict;
      if (!admission?.admitted) {
        failed.push({ taskGuid: work.taskGuid, reason: admission?.reason ?? DRAINING_REASON });
        continue;
      }
      const runner = this.newRunner(work);
      runner.start();
    }
    return failed;
  }

  /**
   * At start, before any work: every outcome an earlier run of this cell journaled is reported again,
   * and every task it left running is followed (or, where it cannot be, failed with the reason).
   */
  async recover(records: readonly JournalRecord[]): Promise<void> {
    for (const record of records) {
      if (isOutcome(record)) this.reporter.submit(record);
      else this.register(TaskRunner.resume(record, this.runnerEnv()));
    }
  }

  private newRunner(work: cellv1.TaskWork): TaskRunner {
    return this.register(new TaskRunner(work, this.runnerEnv()));
  }

  private register(runner: TaskRunner): TaskRunner {
    this.runners.set(runner.work.taskGuid, runner);
    return runner;
  }

  private runnerEnv(): RunnerEnv {
    const p = this.parts;
    return {
      cellId: p.identity.cellId,
      runtime: p.runtime,
      lifecycle: p.lifecycle,
      ledger: this.ledger,
      logs: p.logs,
      cache: p.cache,
      preloaded: p.identity.preloaded,
      limits: p.limits,
      metrics: this.metrics,
      logger: p.logger,
      journal: p.journal,
      reporter: this.reporter,
      refuseClaimed: (reserved, task) => claimedTaskRefusal(reserved, task, this.offer()),
      removeContainer: (id) => this.removeContainer(id),
      pool: p.pool,
      imageHomes: this.imageHomes,
      onDone: (r) => {
        if (this.runners.get(r.work.taskGuid) === r) this.runners.delete(r.work.taskGuid);
        if (this.runners.size === 0) for (const w of this.idle) w();
      },
    };
  }

  /** Users' home directories as the images hold them, for every task of the cell. */
  private readonly imageHomes = new ImageHomes();

  /** Container ids the cell is removing itself (their die/destroy events need no reconcile). */
  readonly removing = new Set<string>();

  isRemoving(containerId: string): boolean {
    return [...this.removing].some(
      (id) => id === containerId || id.startsWith(containerId) || containerId.startsWith(id),
    );
  }

  /** Removes a container, marking it as the cell's own doing for a while (events come after the call). */
  async removeContainer(containerId: string): Promise<void> {
    this.removing.add(containerId);
    try {
      await this.parts.runtime.remove(containerId);
    } finally {
      setTimeout(() => this.removing.delete(containerId), 5_000).unref();
    }
  }

  /** Stops a task's runner (CancelTask); false when this cell runs no such task. */
  stopTask(taskGuid: string, reason: StopReason): boolean {
    const runner = this.runners.get(taskGuid);
    if (!runner) return false;
    runner.stop(reason);
    return true;
  }

  /** Refuses new work and waits up to timeoutMs for running tasks; then stops the rest (they report the cell's going). */
  async drain(timeoutMs: number): Promise<void> {
    this.draining = true;
    if (this.runners.size > 0) {
      this.parts.logger.info({ tasks: this.runners.size, timeoutMs }, "draining: waiting for running tasks");
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, timeoutMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.idle.add(done);
      });
    }
    const left = [...this.runners.values()];
    if (left.length)
      this.parts.logger.warn({ tasks: left.length }, "drain timeout reached: stopping the tasks still running");
    for (const r of left) r.stop("drain");
    await Promise.all(left.map((r) => r.done));
  }
}

import { FailureReason, isTerminal } from "@diego/models";
import { TaskState, type Task } from "@diego/proto";
import type { Logger } from "@diego/kit";
import type { Cell, TaskClient } from "../cell.js";
import { cellLabels, taskGuidOf } from "../executor/labels.js";
import type { LifecycleClient } from "../executor/task-runner.js";
import type { ContainerInfo, ContainerRuntime } from "../runtime/container-runtime.js";
import { decide, type BbsSide, type CellSide, type ReconcileAction } from "./decide.js";

export interface ReconcilerOptions {
  cell: Cell;
  runtime: ContainerRuntime;
  tasks: TaskClient;
  lifecycle: LifecycleClient;
  intervalMs: number;
  logger: Logger;
}

/**
 * The cell's level-triggered repair (docs/architecture.md, resolve): on every container event and every
 * interval, compare this cell's containers and runners with TaskService.ListTasks(cell_id=self), and
 * act on what `decide` says for each task guid.
 */
export class Reconciler {
  private timer?: NodeJS.Timeout;
  private unwatch?: () => void;
  private running?: Promise<void>;
  private again = false;
  private soon?: NodeJS.Timeout;
  private stopped = false;

  constructor(private readonly o: ReconcilerOptions) {}

  /** Runs one pass now, then one every interval and shortly after container events. */
  async start(): Promise<void> {
    await this.sync();
    this.timer = setInterval(() => void this.sync(), this.o.intervalMs);
    this.timer.unref();
    this.watch();
  }

  private watch(): void {
    if (this.stopped) return;
    this.unwatch = this.o.runtime.watch(
      cellLabels(this.o.cell.id),
      (e) => {
        // A container this cell is not removing itself died or went: look now rather than at the next pass.
        if ((e.action === "die" || e.action === "destroy") && !this.o.cell.isRemoving(e.containerId)) this.syncSoon();
      },
      (err) => {
        this.o.logger.warn({ err: err.message }, "container event stream failed; watching again");
        setTimeout(() => this.watch(), 1000).unref();
      },
    );
  }

  private syncSoon(): void {
    if (this.soon || this.stopped) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      void this.sync();
    }, 200);
    this.soon.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.soon);
    this.unwatch?.();
  }

  /** One full pass; concurrent calls coalesce into one more pass. */
  sync(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = this.pass()
      .catch((err) => this.o.logger.warn({ err }, "reconcile pass failed"))
      .finally(() => {
        this.running = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          void this.sync();
        }
      });
    return this.running;
  }

  private async pass(): Promise<void> {
    const { cell, runtime } = this.o;
    // Order matters: runners, then containers, then tasks. A container seen here was created after
    // its claim won, so the task list fetched afterwards shows the claim unless the task has gone.
    const phases = new Map([...cell.runners].map(([guid, r]) => [guid, r.phase]));
    const owed = new Set(cell.reporter.guids());
    const containers = new Map<string, ContainerInfo>();
    for (const c of await runtime.list(cellLabels(cell.id))) {
      const guid = taskGuidOf(c, cell.id);
      if (guid) containers.set(guid, c);
    }
    const tasks: Task[] = [];
    let pageToken = "";
    do {
      const page = await this.o.tasks.listTasks({ cellId: cell.id, pageToken });
      tasks.push(...page.tasks);
      pageToken = page.nextPageToken;
    } while (pageToken);
    const byGuid = new Map(tasks.filter((t) => t.cellId === cell.id).map((t) => [t.taskGuid, t]));
    const guids = new Set([...phases.keys(), ...owed, ...containers.keys(), ...byGuid.keys()]);
    for (const guid of guids) {
      const side = cellSide(phases.get(guid), containers.has(guid), owed.has(guid));
      const bbs = bbsSide(byGuid.get(guid));
      const action = decide(side, bbs);
      if (action === "nothing") continue;
      this.o.logger.info({ taskGuid: guid, cellId: cell.id, cell: side, bbs, action }, "reconcile");
      await this.act(action, guid, containers.get(guid)).catch((err) =>
        this.o.logger.warn({ err, taskGuid: guid, action }, "reconcile action failed"),
      );
    }
  }

  private async act(action: ReconcileAction, guid: string, container: ContainerInfo | undefined): Promise<void> {
    const { cell } = this.o;
    const runner = cell.runners.get(guid);
    switch (action) {
      case "claim":
        runner?.retryClaim();
        return;
      case "stop-runner":
        runner?.stop("gone");
        return;
      case "stop-and-complete-missing":
        if (runner && runner.phase === "running" && !(await this.containerExists(guid))) runner.stop("missing");
        return;
      case "complete-missing":
        if (runner || (await this.containerExists(guid))) return;
        await this.complete(guid, FailureReason.containerMissing);
        return;
      case "fail-orphan":
        if (runner) return;
        await this.complete(guid, FailureReason.cellDisappeared);
        if (container) await cell.removeContainer(container.id);
        return;
      case "remove-container":
        if (runner) return;
        if (container) await cell.removeContainer(container.id);
        return;
      case "report-now":
        cell.reporter.kick(guid);
        return;
      case "forget-outcome":
        if (runner) return;
        await cell.reporter.forget(guid);
        if (container) await cell.removeContainer(container.id);
        return;
      case "nothing":
        return;
    }
  }

  private async complete(guid: string, reason: string): Promise<void> {
    try {
      await this.o.lifecycle.completeTask({
        taskGuid: guid,
        cellId: this.o.cell.id,
        failed: true,
        failureReason: reason,
        result: "",
      });
      this.o.cell.metrics.tasksFailed.inc();
    } catch (err) {
      if (!isTerminal(err)) throw err;
    }
  }

  private async containerExists(guid: string): Promise<boolean> {
    const list = await this.o.runtime.list(cellLabels(this.o.cell.id));
    return list.some((c) => taskGuidOf(c, this.o.cell.id) === guid);
  }
}

export function cellSide(phase: string | undefined, hasContainer: boolean, outcomeOwed = false): CellSide {
  switch (phase) {
    case undefined:
      if (outcomeOwed) return "reporting";
      return hasContainer ? "orphan" : "none";
    case "reserved":
    case "claiming":
    case "starting":
      return phase;
    case "running":
      return hasContainer ? "running" : "lost";
    default:
      return "finishing";
  }
}

export function bbsSide(task: Task | undefined): BbsSide {
  if (!task) return "absent";
  if (task.state === TaskState.CLAIMED || task.state === TaskState.RUNNING) return "active";
  if (task.state === TaskState.COMPLETED || task.state === TaskState.RESOLVING) return "finished";
  return "absent";
}

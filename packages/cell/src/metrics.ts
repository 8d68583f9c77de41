import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Capacity } from "./capacity/capacity-ledger.js";
import type { PoolStats } from "./runtime/container-pool.js";

/**
 * The cell's metrics, named in Diego's style like the BBS's and the auctioneer's:
 *   CellTasksStarted / CellTasksSucceeded / CellTasksFailed {cell_id, label_<key>…}  tasks this cell ran
 *     (the BBS counts the same as TasksStarted/Succeeded/Failed{cell_id} from its side); each task label
 *     key the operator names (--metric-label-keys) is one more Prometheus label, `label_<key>` with the
 *     task's value ("" when it has none), so that a task's labels show in the cell's per-task metrics
 *   ContainerCreationDuration {cell_id}  seconds to create and start a task's container (or to take a pooled one)
 *   CapacityTotalMemory / CapacityTotalDisk / CapacityTotalContainers, and
 *   CapacityRemainingMemory / CapacityRemainingDisk / CapacityRemainingContainers {cell_id}
 *     (the rep's names; reserved capacity, in MiB and containers)
 *   ContainerPoolReady / ContainerPoolCreating / ContainerPoolShapes {cell_id}  the container pool now
 *     (docs/performance.md, "The container pool"; 0 when it is off), and since the start
 *   ContainerPoolClaims {cell_id, result=hit|miss|discarded}  claims that took a pooled container,
 *     found none ready, or took one that could not be given the task's limits
 *   ContainerPoolCreated / ContainerPoolCreateFailures {cell_id}  containers the pool made, or failed to
 */
/** A task label key as a Prometheus label name: `label_` and the key with every other character as `_`. */
export function metricLabelName(key: string): string {
  return `label_${key.replace(/[^A-Za-z0-9_]/g, "_")}`;
}

/** Counts of tasks, by the cell and the task labels the operator chose. */
export class TaskCounter {
  constructor(
    private readonly counter: Counter,
    private readonly cellId: string,
    private readonly keys: readonly string[],
  ) {}

  inc(taskLabels: Record<string, string> = {}): void {
    const labels: Record<string, string> = { cell_id: this.cellId };
    for (const key of this.keys) labels[metricLabelName(key)] = taskLabels[key] ?? "";
    this.counter.inc(labels);
  }
}

export class CellMetrics {
  readonly tasksStarted: TaskCounter;
  readonly tasksSucceeded: TaskCounter;
  readonly tasksFailed: TaskCounter;
  readonly containerCreateSeconds: Histogram;

  constructor(
    registry: Registry,
    cellId: string,
    capacity: () => { total: Capacity; available: Capacity },
    /** Task label keys that become labels of the per-task counters. */
    labelKeys: readonly string[] = [],
    /** The container pool's figures; undefined when it is off. */
    pool: () => PoolStats | undefined = () => undefined,
  ) {
    const labels = { cell_id: cellId };
    const keys = [...new Set(labelKeys)];
    const counter = (name: string, help: string) =>
      new TaskCounter(
        new Counter({ name, help, labelNames: ["cell_id", ...keys.map(metricLabelName)], registers: [registry] }),
        cellId,
        keys,
      );
    this.tasksStarted = counter("CellTasksStarted", "Tasks this cell claimed and started.");
    this.tasksSucceeded = counter("CellTasksSucceeded", "Tasks this cell completed successfully.");
    this.tasksFailed = counter("CellTasksFailed", "Tasks this cell completed as failed.");
    const h = new Histogram({
      name: "ContainerCreationDuration",
      help: "Seconds to create and start a task's container.",
      labelNames: ["cell_id"],
      buckets: [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10],
      registers: [registry],
    });
    this.containerCreateSeconds = h.labels(labels) as unknown as Histogram;
    const gauges = [
      ["CapacityTotalMemory", "Memory the cell offers for tasks, MiB.", (c) => c.total.memoryMb],
      ["CapacityTotalDisk", "Disk the cell offers for tasks, MiB.", (c) => c.total.diskMb],
      ["CapacityTotalContainers", "Containers the cell offers.", (c) => c.total.containers],
      ["CapacityRemainingMemory", "Memory not reserved by tasks, MiB.", (c) => c.available.memoryMb],
      ["CapacityRemainingDisk", "Disk not reserved by tasks, MiB.", (c) => c.available.diskMb],
      ["CapacityRemainingContainers", "Containers not reserved by tasks.", (c) => c.available.containers],
    ] as const satisfies readonly (readonly [
      string,
      string,
      (c: { total: Capacity; available: Capacity }) => number,
    ])[];
    const poolGauges = [
      ["ContainerPoolReady", "Never-used containers ready for tasks.", (p) => p.ready],
      ["ContainerPoolCreating", "Pooled containers being created.", (p) => p.creating],
      ["ContainerPoolShapes", "Shapes (image, disk, privileged) the pool keeps containers for.", (p) => p.shapes],
      ["ContainerPoolCreated", "Containers the pool created since the start.", (p) => p.created],
      ["ContainerPoolCreateFailures", "Containers the pool failed to create since the start.", (p) => p.createFailures],
    ] as const satisfies readonly (readonly [string, string, (p: PoolStats) => number])[];
    /** A gauge of this cell read when scraped. */
    const cellGauge = (name: string, help: string, value: () => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["cell_id"],
        registers: [registry],
        collect() {
          this.set(labels, value());
        },
      });
    for (const [name, help, pick] of poolGauges) {
      cellGauge(name, help, () => {
        const stats = pool();
        return stats ? pick(stats) : 0;
      });
    }
    new Gauge({
      name: "ContainerPoolClaims",
      help: "Claimed tasks since the start, by what the pool gave them: hit, miss, discarded.",
      labelNames: ["cell_id", "result"],
      registers: [registry],
      collect() {
        const s = pool();
        const claims = { hit: s?.hits, miss: s?.misses, discarded: s?.discarded };
        for (const [result, n] of Object.entries(claims)) this.set({ ...labels, result }, n ?? 0);
      },
    });
    for (const [name, help, pick] of gauges) cellGauge(name, help, () => pick(capacity()));
  }
}

import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { Capacity } from "./capacity/capacity-ledger.js";

/** The cell's own metrics (Diego's TasksStarted/Succeeded/Failed per cell, container create latency, capacity). */
export class CellMetrics {
  readonly tasksStarted: Counter;
  readonly tasksSucceeded: Counter;
  readonly tasksFailed: Counter;
  readonly containerCreateSeconds: Histogram;

  constructor(registry: Registry, cellId: string, capacity: () => { total: Capacity; available: Capacity }) {
    const labels = { cell_id: cellId };
    const counter = (name: string, help: string) => {
      const c = new Counter({ name, help, labelNames: ["cell_id"], registers: [registry] });
      return c.labels(labels) as unknown as Counter;
    };
    this.tasksStarted = counter("diego_cell_tasks_started_total", "Tasks this cell claimed and started (TasksStarted).");
    this.tasksSucceeded = counter("diego_cell_tasks_succeeded_total", "Tasks this cell completed successfully (TasksSucceeded).");
    this.tasksFailed = counter("diego_cell_tasks_failed_total", "Tasks this cell completed as failed (TasksFailed).");
    const h = new Histogram({
      name: "diego_cell_container_create_seconds",
      help: "Time to create and start a task's container.",
      labelNames: ["cell_id"],
      buckets: [0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5, 10],
      registers: [registry],
    });
    this.containerCreateSeconds = h.labels(labels) as unknown as Histogram;
    for (const [which, pick] of [
      ["total", (c: ReturnType<typeof capacity>) => c.total],
      ["available", (c: ReturnType<typeof capacity>) => c.available],
    ] as const) {
      new Gauge({
        name: `diego_cell_capacity_${which}`,
        help: `The cell's ${which} capacity by resource (memory_mb, disk_mb, containers).`,
        labelNames: ["cell_id", "resource"],
        registers: [registry],
        collect() {
          const c = pick(capacity());
          this.set({ ...labels, resource: "memory_mb" }, c.memoryMb);
          this.set({ ...labels, resource: "disk_mb" }, c.diskMb);
          this.set({ ...labels, resource: "containers" }, c.containers);
        },
      });
    }
  }
}

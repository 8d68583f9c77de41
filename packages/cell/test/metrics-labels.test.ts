import { Registry } from "prom-client";
import { CellMetrics, metricLabelName } from "../src/metrics.js";

// Task labels in the cell's per-task counters: each key the operator names is one label.
const capacity = () => ({
  total: { memoryMb: 1, diskMb: 1, containers: 1 },
  available: { memoryMb: 1, diskMb: 1, containers: 1 },
});

test.each([
  ["team", "label_team"],
  ["app.kubernetes.io/name", "label_app_kubernetes_io_name"],
  ["a-b", "label_a_b"],
])("label key %p is the Prometheus label %p", (key, name) => {
  expect(metricLabelName(key)).toBe(name);
});

test("the counters carry the chosen task labels, empty where a task has none; others are left out", async () => {
  const registry = new Registry();
  const m = new CellMetrics(registry, "cell-9", capacity as never, ["team", "team", "app"]);
  m.tasksStarted.inc({ team: "builds", secret: "x" });
  m.tasksSucceeded.inc({ app: "web" });
  m.tasksFailed.inc();
  const text = await registry.metrics();
  expect(text).toContain('CellTasksStarted{cell_id="cell-9",label_team="builds",label_app=""} 1');
  expect(text).toContain('CellTasksSucceeded{cell_id="cell-9",label_team="",label_app="web"} 1');
  expect(text).toContain('CellTasksFailed{cell_id="cell-9",label_team="",label_app=""} 1');
  expect(text).not.toContain("secret");
});

test("without label keys the counters have only cell_id, as before", async () => {
  const registry = new Registry();
  new CellMetrics(registry, "cell-9", capacity as never).tasksStarted.inc({ team: "builds" });
  expect(await registry.metrics()).toContain('CellTasksStarted{cell_id="cell-9"} 1');
});

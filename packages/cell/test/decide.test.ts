import { decide, DECISIONS, type BbsSide, type CellSide, type ReconcileAction } from "../src/reconcile/decide.js";
import { bbsSide, cellSide } from "../src/reconcile/reconciler.js";
import { create } from "@bufbuild/protobuf";
import { TaskSchema, TaskState } from "@diego/proto";

// One row per (cell side × BBS side): what the cell does, and why.
const rows: Array<[CellSide, BbsSide, ReconcileAction, string]> = [
  ["none", "absent", "nothing", "nothing here, nothing there"],
  ["none", "active", "complete-missing", "the BBS thinks this cell runs it but no container exists: fail it"],
  ["none", "finished", "nothing", "a finished task whose container is already gone"],
  ["reserved", "absent", "claim", "a reservation whose claim failed for a passing reason: claim and run"],
  ["reserved", "active", "claim", "the claim won but its answer was lost: claim again (idempotent) and run"],
  ["reserved", "finished", "stop-runner", "cancelled before it was claimed: drop the reservation"],
  ["claiming", "absent", "nothing", "the claim is in flight"],
  ["claiming", "active", "nothing", "the claim is in flight"],
  ["claiming", "finished", "nothing", "the claim is in flight and will be refused"],
  ["starting", "absent", "stop-runner", "deleted or claimed elsewhere while the container was being made"],
  ["starting", "active", "nothing", "steady: container being made"],
  ["starting", "finished", "stop-runner", "cancelled while the container was being made"],
  ["running", "absent", "stop-runner", "deleted or claimed elsewhere: delete the container"],
  ["running", "active", "nothing", "steady state"],
  ["running", "finished", "stop-runner", "cancelled (the cancel call was lost): delete the container"],
  ["finishing", "absent", "nothing", "the runner reports and cleans up itself"],
  ["finishing", "active", "nothing", "the runner reports and cleans up itself"],
  ["finishing", "finished", "nothing", "the runner reports and cleans up itself"],
  ["reporting", "absent", "forget-outcome", "the task was deleted while its outcome waited: never report over it"],
  [
    "reporting",
    "active",
    "report-now",
    "the BBS answers and waits for the outcome: report it without waiting out the backoff",
  ],
  ["reporting", "finished", "forget-outcome", "the BBS finished the task itself (e.g. cell lost): drop the outcome"],
  ["orphan", "absent", "remove-container", "a container nobody owns"],
  ["orphan", "active", "fail-orphan", "left by a crashed cell process: fail the task, remove the container"],
  ["orphan", "finished", "remove-container", "a finished task's leftover container"],
  ["lost", "absent", "stop-runner", "container vanished and the task is gone"],
  ["lost", "active", "stop-and-complete-missing", "container vanished under a running task: fail it"],
  ["lost", "finished", "stop-runner", "container vanished after the task finished elsewhere"],
];

test.each(rows)("%s × %s → %s (%s)", (cell, bbs, action) => {
  expect(decide(cell, bbs)).toBe(action);
});

test("the table has exactly these rows", () => {
  const all = Object.entries(DECISIONS).flatMap(([c, row]) => Object.keys(row).map((b) => `${c}×${b}`));
  expect(all.sort()).toEqual(rows.map(([c, b]) => `${c}×${b}`).sort());
});

test("cell side from runner phase and container", () => {
  expect(cellSide(undefined, false)).toBe("none");
  expect(cellSide(undefined, true)).toBe("orphan");
  expect(cellSide("reserved", false)).toBe("reserved");
  expect(cellSide("claiming", false)).toBe("claiming");
  expect(cellSide("starting", true)).toBe("starting");
  expect(cellSide("running", true)).toBe("running");
  expect(cellSide("running", false)).toBe("lost");
  expect(cellSide("finishing", false)).toBe("finishing");
  expect(cellSide("done", true)).toBe("finishing");
  expect(cellSide(undefined, false, true)).toBe("reporting");
  expect(cellSide(undefined, true, true)).toBe("reporting");
  expect(cellSide("running", true, true)).toBe("running");
});

test("BBS side from the task state", () => {
  const t = (state: TaskState) => create(TaskSchema, { taskGuid: "g", state });
  expect(bbsSide(undefined)).toBe("absent");
  expect(bbsSide(t(TaskState.CLAIMED))).toBe("active");
  expect(bbsSide(t(TaskState.RUNNING))).toBe("active");
  expect(bbsSide(t(TaskState.COMPLETED))).toBe("finished");
  expect(bbsSide(t(TaskState.RESOLVING))).toBe("finished");
  expect(bbsSide(t(TaskState.PENDING))).toBe("absent");
});

import { create } from "@bufbuild/protobuf";
import { TaskSchema, TaskState } from "@diego/proto";
import { countByState, newestFirst, page, parseFilter, placementFailures, taskJson, timeline } from "../src/views.js";

// The console's pure views (docs/console.md).
const ns = (ms: number) => BigInt(ms) * 1_000_000n;

test("timeline: the transitions a task's times record, in order, with what happened", () => {
  const task = create(TaskSchema, {
    taskGuid: "t",
    state: TaskState.COMPLETED,
    createdAt: ns(1_000),
    claimedAt: ns(2_000),
    startedAt: ns(2_500),
    completedAt: ns(4_000),
    cellId: "cell-1",
    failed: true,
    failureReason: "DEMO: Exited with status 3",
  });
  expect(timeline(task)).toEqual([
    { state: "PENDING", at: 1_000, detail: "desired" },
    { state: "CLAIMED", at: 2_000, detail: "by cell-1" },
    { state: "RUNNING", at: 2_500 },
    { state: "COMPLETED", at: 4_000, detail: "failed: DEMO: Exited with status 3" },
  ]);
  const pending = create(TaskSchema, {
    state: TaskState.PENDING,
    createdAt: ns(1),
    updatedAt: ns(9),
    rejectionCount: 2,
    rejectionReason: "insufficient resources: memory",
  });
  expect(timeline(pending)).toEqual([
    { state: "PENDING", at: 1, detail: "desired" },
    { state: "PENDING", at: 9, detail: "rejected 2× (last: insufficient resources: memory)" },
  ]);
});

test.each([
  ["domain=d&state=RUNNING&cell=c1", { domain: "d", state: TaskState.RUNNING, cellId: "c1", labels: {} }],
  [
    "label=team=a&label=tier=1",
    { domain: undefined, state: undefined, cellId: undefined, labels: { team: "a", tier: "1" } },
  ],
  ["state=INVALID", { error: 'state "INVALID" is not one of PENDING, CLAIMED, RUNNING, COMPLETED, RESOLVING' }],
  ["state=done", { error: 'state "done" is not one of PENDING, CLAIMED, RUNNING, COMPLETED, RESOLVING' }],
  ["label=novalue", { error: 'label "novalue" must be key=value' }],
])("parseFilter(%s)", (query, expected) => {
  expect(parseFilter(new URLSearchParams(query))).toEqual(expected);
});

test("pages, counts and order", () => {
  expect(page([1, 2, 3, 4, 5], "", 2)).toEqual({ items: [1, 2], next: "2" });
  expect(page([1, 2, 3, 4, 5], "4", 2)).toEqual({ items: [5], next: "" });
  expect(page([1, 2, 3], "junk", 5)).toEqual({ items: [1, 2, 3], next: "" });
  const tasks = [
    create(TaskSchema, { taskGuid: "a", createdAt: 1n, state: TaskState.PENDING }),
    create(TaskSchema, { taskGuid: "c", createdAt: 3n, state: TaskState.RUNNING }),
    create(TaskSchema, { taskGuid: "b", createdAt: 3n, state: TaskState.RUNNING }),
  ];
  expect(newestFirst(tasks).map((t) => t.taskGuid)).toEqual(["b", "c", "a"]);
  expect(countByState(tasks)).toEqual({ PENDING: 1, CLAIMED: 0, RUNNING: 2, COMPLETED: 0, RESOLVING: 0 });
});

test("placement failures: rejected tasks and tasks that failed before any cell claimed them", () => {
  const tasks = [
    create(TaskSchema, { taskGuid: "ok", state: TaskState.RUNNING, cellId: "c", claimedAt: 5n, updatedAt: 5n }),
    create(TaskSchema, {
      taskGuid: "rejected",
      state: TaskState.PENDING,
      rejectionCount: 1,
      rejectionReason: "insufficient resources: memory",
      updatedAt: 7n,
    }),
    create(TaskSchema, {
      taskGuid: "never",
      state: TaskState.COMPLETED,
      failed: true,
      failureReason: "found no compatible cell for required rootfs",
      updatedAt: 9n,
    }),
  ];
  expect(placementFailures(tasks, 10).map((f) => [f.task_guid, f.reason])).toEqual([
    ["never", "found no compatible cell for required rootfs"],
    ["rejected", "insufficient resources: memory"],
  ]);
});

test("taskJson never carries image_password or secret_env", () => {
  const json = taskJson(
    create(TaskSchema, {
      taskGuid: "s",
      imageUsername: "u",
      imagePassword: "p",
      secretEnv: [{ name: "K", value: "v" }],
    }),
  );
  expect(json).toMatchObject({ task_guid: "s", image_username: "u" });
  expect(json).not.toHaveProperty("image_password");
  expect(json).not.toHaveProperty("secret_env");
});

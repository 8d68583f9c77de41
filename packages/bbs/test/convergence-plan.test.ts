import { TaskState } from "@diego/proto";
import { planConvergence, type TaskFacts } from "../src/convergence/plan.js";

const NOW = 10_000_000;
const D = {
  kickTaskDurationMs: 30_000,
  expirePendingTaskDurationMs: 1_800_000,
  expireCompletedTaskDurationMs: 120_000,
};

function t(guid: string, state: TaskState, fields: Partial<TaskFacts> = {}): TaskFacts {
  return {
    guid,
    state,
    cellId: "",
    createdAtMs: NOW,
    updatedAtMs: NOW,
    firstCompletedAtMs: 0,
    hasCallback: false,
    ...fields,
  };
}

/** The cells decideCellLoss declared lost (cell-1 is alive, cell-9 is gone). */
const lost = new Set(["cell-9"]);

type Step = keyof ReturnType<typeof planConvergence>;

const cases: [string, TaskFacts, Step | undefined][] = [
  ["fresh PENDING is auctioned again", t("p1", TaskState.PENDING), "auction"],
  [
    "PENDING just inside the limit is auctioned",
    t("p2", TaskState.PENDING, { createdAtMs: NOW - 1_800_000 }),
    "auction",
  ],
  ["PENDING past the limit expires", t("p3", TaskState.PENDING, { createdAtMs: NOW - 1_800_001 }), "expirePending"],
  ["CLAIMED on a live cell is left alone", t("c1", TaskState.CLAIMED, { cellId: "cell-1" }), undefined],
  ["CLAIMED on a vanished cell is lost", t("c2", TaskState.CLAIMED, { cellId: "cell-9" }), "cellLost"],
  ["RUNNING on a live cell is left alone", t("r1", TaskState.RUNNING, { cellId: "cell-1" }), undefined],
  ["RUNNING on a vanished cell is lost", t("r2", TaskState.RUNNING, { cellId: "cell-9" }), "cellLost"],
  ["fresh COMPLETED without callback waits", t("d1", TaskState.COMPLETED, { firstCompletedAtMs: NOW }), undefined],
  [
    "COMPLETED with callback, unchanged for kick duration, is called again",
    t("d2", TaskState.COMPLETED, { hasCallback: true, updatedAtMs: NOW - 30_001, firstCompletedAtMs: NOW - 30_001 }),
    "callbacks",
  ],
  [
    "COMPLETED with callback, changed recently, waits",
    t("d3", TaskState.COMPLETED, { hasCallback: true, updatedAtMs: NOW - 1_000, firstCompletedAtMs: NOW - 1_000 }),
    undefined,
  ],
  [
    "COMPLETED without callback past kick duration waits for the client",
    t("d4", TaskState.COMPLETED, { updatedAtMs: NOW - 60_000, firstCompletedAtMs: NOW - 60_000 }),
    undefined,
  ],
  [
    "COMPLETED past expiry is deleted",
    t("d5", TaskState.COMPLETED, { hasCallback: true, updatedAtMs: NOW - 120_001, firstCompletedAtMs: NOW - 120_001 }),
    "expireCompleted",
  ],
  [
    "fresh RESOLVING waits",
    t("s1", TaskState.RESOLVING, { updatedAtMs: NOW - 1_000, firstCompletedAtMs: NOW - 2_000 }),
    undefined,
  ],
  [
    "RESOLVING past kick duration is demoted",
    t("s2", TaskState.RESOLVING, { updatedAtMs: NOW - 30_001, firstCompletedAtMs: NOW - 40_000 }),
    "demote",
  ],
  [
    "RESOLVING past expiry is deleted",
    t("s3", TaskState.RESOLVING, { updatedAtMs: NOW - 30_001, firstCompletedAtMs: NOW - 120_001 }),
    "expireCompleted",
  ],
];

test.each(cases)("%s", (_name, task, step) => {
  const plan = planConvergence([task], lost, NOW, D);
  const steps = (Object.keys(plan) as Step[]).filter((k) => plan[k].includes(task.guid));
  expect(steps).toEqual(step ? [step] : []);
});

test("all at once: each task lands in exactly its step", () => {
  const plan = planConvergence(
    cases.map(([, task]) => task),
    lost,
    NOW,
    D,
  );
  for (const [, task, step] of cases) {
    const steps = (Object.keys(plan) as Step[]).filter((k) => plan[k].includes(task.guid));
    expect(steps).toEqual(step ? [step] : []);
  }
});

test("unknown cells fail no task for a lost cell; only the tasks of lost cells fail", () => {
  const tasks = [t("r", TaskState.RUNNING, { cellId: "cell-1" }), t("c", TaskState.CLAIMED, { cellId: "cell-2" })];
  expect(planConvergence(tasks, undefined, NOW, D).cellLost).toEqual([]);
  expect(planConvergence(tasks, new Set(), NOW, D).cellLost).toEqual([]);
  expect(planConvergence(tasks, new Set(["cell-1", "cell-2"]), NOW, D).cellLost).toEqual(["r", "c"]);
});

test("every duration is a parameter", () => {
  const short = { kickTaskDurationMs: 10, expirePendingTaskDurationMs: 10, expireCompletedTaskDurationMs: 20 };
  const plan = planConvergence(
    [
      t("p", TaskState.PENDING, { createdAtMs: NOW - 11 }),
      t("s", TaskState.RESOLVING, { updatedAtMs: NOW - 11, firstCompletedAtMs: NOW - 15 }),
      t("d", TaskState.COMPLETED, { updatedAtMs: NOW - 21, firstCompletedAtMs: NOW - 21 }),
    ],
    lost,
    NOW,
    short,
  );
  expect(plan).toMatchObject({ expirePending: ["p"], demote: ["s"], expireCompleted: ["d"] });
});

import {
  formatTable,
  judgeCase,
  judgeTask,
  passed,
  rowOf,
  type EffectCount,
  type FinalRecord,
  type JudgedTask,
  type Verdict,
} from "../src/index.js";

const EXPECTED = "result-of-t";
const completed = (over: Partial<FinalRecord> = {}): FinalRecord => ({
  state: "COMPLETED",
  failed: false,
  failureReason: "",
  result: EXPECTED,
  cellId: "cell-a",
  ...over,
});
const failed = (failureReason: string, cellId = "cell-a"): FinalRecord =>
  completed({ failed: true, failureReason, result: "", cellId });
const task = (record: FinalRecord | undefined, effects: EffectCount): JudgedTask => ({
  guid: "t",
  expectedResult: EXPECTED,
  effects,
  record,
});

const once = { starts: 1, dones: 1 };
const started = { starts: 1, dones: 0 };
const never = { starts: 0, dones: 0 };
const twice = { starts: 2, dones: 1 };
const gone = new Set(["cell-a"]);
const none = new Set<string>();

const cases: Array<[string, JudgedTask, ReadonlySet<string>, Verdict, boolean, string]> = [
  ["completed with its result, ran once", task(completed(), once), none, "completed", false, ""],
  ["completed, but ran twice", task(completed(), twice), none, "completed", true, ""],
  ["no record at all", task(undefined, once), none, "lost", false, "the BBS has no record of it"],
  ["still running at the end", task(completed({ state: "RUNNING" }), started), none, "lost", false, "still RUNNING"],
  ["still pending at the end", task(completed({ state: "PENDING" }), never), none, "lost", false, "still PENDING"],
  [
    "completed with another result",
    task(completed({ result: "42" }), once),
    none,
    "lost",
    false,
    'COMPLETED with result "42", not "result-of-t"',
  ],
  [
    "completed although its action never reached the end",
    task(completed(), started),
    none,
    "lost",
    false,
    "COMPLETED, but its action never ran to the end",
  ],
  [
    "cell disappeared, and it really did",
    task(failed("cell disappeared before completion"), started),
    gone,
    "failed-true",
    false,
    "cell disappeared before completion",
  ],
  [
    "cell disappeared, really, after its action had finished",
    task(failed("cell disappeared before completion"), once),
    gone,
    "failed-true",
    false,
    "cell disappeared before completion",
  ],
  [
    "cell disappeared, but it did not",
    task(failed("cell disappeared before completion"), once),
    none,
    "lost",
    false,
    'failed "cell disappeared before completion", but its cell cell-a did not go away',
  ],
  [
    "cell disappeared, but another cell is the one that went",
    task(failed("cell disappeared before completion", "cell-b"), started),
    gone,
    "lost",
    false,
    'failed "cell disappeared before completion", but its cell cell-b did not go away',
  ],
  [
    "cell disappeared, naming no cell",
    task(failed("cell disappeared before completion", ""), never),
    gone,
    "lost",
    false,
    'failed "cell disappeared before completion", but it names no cell',
  ],
  [
    "container missing on a cell that went away",
    task(failed("task container does not exist"), started),
    gone,
    "failed-true",
    false,
    "task container does not exist",
  ],
  [
    "any other failure of a task that cannot fail",
    task(failed("DEMO: Exited with status 1"), once),
    gone,
    "lost",
    false,
    'failed "DEMO: Exited with status 1"',
  ],
  [
    "a true reason, but it ran twice",
    task(failed("cell disappeared before completion"), twice),
    gone,
    "failed-true",
    true,
    "cell disappeared before completion",
  ],
];

test.each(cases)("%s", (_name, input, disappearedCells, verdict, ranTwice, why) => {
  expect(judgeTask(input, { disappearedCells })).toEqual({ guid: "t", verdict, ranTwice, why });
});

test("a case counts its tasks, the twice, the lost and the true failures", () => {
  const summary = judgeCase(
    [
      task(completed(), once),
      task(completed(), twice),
      task(failed("cell disappeared before completion"), started),
      task(undefined, never),
      task(failed("cell disappeared before completion", "cell-b"), once),
    ],
    { disappearedCells: gone },
  );
  expect(summary).toMatchObject({ tasks: 5, completed: 2, failedTrue: 1, finishedThenFailed: 0, twice: 1, lost: 2 });
  const dropped = judgeCase(
    [task(failed("cell disappeared before completion"), once), task(failed("task container does not exist"), started)],
    { disappearedCells: gone },
  );
  expect(dropped).toMatchObject({ failedTrue: 2, finishedThenFailed: 1, lost: 0 });
});

test("the row passes only with nothing twice, nothing lost, and a recovery time", () => {
  const good = rowOf("f", judgeCase([task(completed(), once)], { disappearedCells: none }), 3.2);
  expect(passed(good)).toBe(true);
  expect(passed({ ...good, recoverySeconds: null })).toBe(false);
  expect(passed({ ...good, twice: 1 })).toBe(false);
  expect(passed({ ...good, lost: 1 })).toBe(false);
  expect(passed({ ...good, tasks: 0 })).toBe(false);
  const bad = rowOf("g", judgeCase([task(undefined, twice)], { disappearedCells: none }), null, ["why"]);
  expect(bad.notes).toEqual(["why", "t: ran twice; the BBS has no record of it"]);
});

test("the table has a header, a rule and one line per case", () => {
  const rows = [
    rowOf("cell SIGKILL", judgeCase([task(completed(), once)], { disappearedCells: none }), 3.04),
    rowOf("etcd", judgeCase([task(undefined, never)], { disappearedCells: none }), null),
  ];
  const lines = formatTable(rows).split("\n");
  expect(lines).toHaveLength(4);
  expect(lines[0]).toMatch(
    /^fault\s+tasks\s+completed\s+failed \(true\)\s+of which finished\s+twice\s+lost\s+recovery s\s+ok$/,
  );
  expect(lines[2]).toMatch(/^cell SIGKILL\s+1\s+1\s+0\s+0\s+0\s+0\s+3\.0\s+yes$/);
  expect(lines[3]).toMatch(/^etcd\s+1\s+0\s+0\s+0\s+0\s+1\s+-\s+NO$/);
});

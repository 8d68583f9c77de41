import { TaskState } from "@diego/proto";
import { Cluster, containersOf, eventually, fixtureTask, uniqueGuid, waitForState } from "../src/index.js";

// Against the live cluster: spread over both cells, tasks no cell can run fail within seconds
// with the texts of docs/contract.md, a task waiting for capacity starts when capacity frees up.
let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.start({
    cells: [
      { id: "cell-1", args: ["--memory-mb", "1024", "--stacks", "linux"] },
      { id: "cell-2", args: ["--memory-mb", "1024", "--stacks", "linux", "--optional-placement-tags", "ssd"] },
    ],
  });
}, 180_000);

afterAll(() => cluster?.stop());

async function cleanup(guids: string[]) {
  for (const guid of guids) {
    await cluster.tasks.resolvingTask({ taskGuid: guid }).catch(() => undefined);
    await cluster.tasks.deleteTask({ taskGuid: guid }).catch(() => undefined);
  }
}

test("50 tasks spread over both cells", async () => {
  const guids = Array.from({ length: 50 }, () => uniqueGuid("spread"));
  await Promise.all(
    guids.map((guid) =>
      cluster.tasks.desireTask(
        fixtureTask("hello.json", guid, {
          memory_mb: 0,
          disk_mb: 0,
          result_file: "",
          action: { run: { path: "/bin/sleep", args: ["2"] } },
        }),
      ),
    ),
  );
  const done = await Promise.all(guids.map((g) => waitForState(cluster.tasks, g, [TaskState.COMPLETED], 300_000)));
  const perCell = new Map<string, number>();
  for (const t of done) {
    expect(t.failed).toBe(false);
    perCell.set(t.cellId, (perCell.get(t.cellId) ?? 0) + 1);
  }
  expect([...perCell.keys()].sort()).toEqual(["cell-1", "cell-2"]);
  expect(Math.min(...perCell.values())).toBeGreaterThanOrEqual(15);
  await cleanup(guids);
}, 400_000);

test.each([
  ["a stack no cell offers", { stack: "windows2016" }, "found no compatible cell for required rootfs"],
  [
    "a preloaded rootfs no cell has",
    { root_fs: "preloaded:cflinuxfs4" },
    "found no compatible cell for required rootfs",
  ],
  ["a placement tag no cell offers", { placement_tags: ["gpu"] }, 'found no compatible cell with placement tag "gpu"'],
  ["more memory than any cell", { memory_mb: 4096 }, "insufficient resources: memory"],
])("%s fails within seconds with the text of docs/contract.md", async (_name, change, reason) => {
  const guid = uniqueGuid("unplaceable");
  const started = Date.now();
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid, change));
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED], 60_000);
  expect(task).toMatchObject({ failed: true, failureReason: reason });
  // Generous for a loaded machine; Diego would take ~1.5 minutes (4 convergence passes).
  expect(Date.now() - started).toBeLessThan(30_000);
  // A permanent refusal (no live cell can ever run it) ends in one round (docs/contract.md).
  expect(task.rejectionCount).toBeGreaterThanOrEqual(1);
  await cleanup([guid]);
});

test("an optional placement tag lands the task on the cell that offers it", async () => {
  const guid = uniqueGuid("ssd");
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid, { placement_tags: ["ssd"] }));
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]);
  expect(task).toMatchObject({ failed: false, cellId: "cell-2" });
  await cleanup([guid]);
});

test("a task waiting for capacity stays PENDING and starts when capacity frees up", async () => {
  const big = (guid: string, seconds: string) =>
    fixtureTask("hello.json", guid, {
      memory_mb: 800,
      result_file: "",
      action: { run: { path: "/bin/sleep", args: [seconds] } },
    });
  const holders = [uniqueGuid("hold"), uniqueGuid("hold")];
  for (const g of holders) await cluster.tasks.desireTask(big(g, "8"));
  await Promise.all(holders.map((g) => waitForState(cluster.tasks, g, [TaskState.RUNNING])));
  const waiter = uniqueGuid("waiter");
  await cluster.tasks.desireTask(big(waiter, "1"));
  await new Promise((r) => setTimeout(r, 3000));
  const waiting = await cluster.tasks.getTask({ taskGuid: waiter });
  expect(waiting.state).toBe(TaskState.PENDING);
  const done = await waitForState(cluster.tasks, waiter, [TaskState.COMPLETED], 120_000);
  expect(done.failed).toBe(false);
  await Promise.all(holders.map((g) => waitForState(cluster.tasks, g, [TaskState.COMPLETED])));
  await cleanup([...holders, waiter]);
  await eventually("containers gone", async () => (await containersOf(waiter)).length === 0, 60_000);
}, 240_000);

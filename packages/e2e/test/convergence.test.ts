import { TaskState } from "@diego/proto";
import { Cluster, containersOf, eventually, fixtureTask, uniqueGuid, waitForState } from "../src/index.js";

// Issues 3 and 5 against the live cluster with short durations: a cell killed -9 while its task runs,
// a completed task nobody resolves, a cell restarted after a crash.
let cluster: Cluster;
const cellArgs = ["--heartbeat-ttl", "3s", "--reconcile-interval", "2s"];

beforeAll(async () => {
  cluster = await Cluster.start({
    bbsArgs: [
      "--converge-repeat-interval",
      "1s",
      "--kick-task-duration",
      "2s",
      "--expire-completed-task-duration",
      "6s",
      // The only cell going silent cannot be told from the BBS's own isolation: it is held this long.
      "--cell-loss-hold-max",
      "5s",
    ],
    cells: [{ id: "cell-1", args: cellArgs }],
  });
}, 180_000);

afterAll(() => cluster?.stop());

test("an unresolved completed task is deleted after expire_completed_task_duration", async () => {
  const guid = uniqueGuid("expire");
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid));
  await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]);
  await eventually(
    "the unresolved task to disappear",
    async () =>
      await cluster.tasks.getTask({ taskGuid: guid }).then(
        () => false,
        (e: { code: string }) => e.code === "NOT_FOUND",
      ),
    60_000,
  );
});

test("kill -9 the cell while its task runs: the task fails, and the restarted cell leaves no stray container", async () => {
  const guid = uniqueGuid("lost");
  await cluster.tasks.desireTask(
    fixtureTask("hello.json", guid, { action: { run: { path: "/bin/sleep", args: ["300"] } } }),
  );
  await waitForState(cluster.tasks, guid, [TaskState.RUNNING]);
  expect((await containersOf(guid)).length).toBe(1);

  await cluster.cell("cell-1").process.stop("SIGKILL");
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED], 60_000);
  expect(task).toMatchObject({ failed: true, failureReason: "cell disappeared before completion" });
  // The container outlives its agent until the agent comes back.
  await cluster.startCell({ id: "cell-1", args: cellArgs });
  await eventually("the orphaned container to be removed", async () => (await containersOf(guid)).length === 0, 60_000);

  // The cell works again afterwards.
  const next = uniqueGuid("after-restart");
  await cluster.tasks.desireTask(fixtureTask("hello.json", next));
  expect(await waitForState(cluster.tasks, next, [TaskState.COMPLETED])).toMatchObject({
    failed: false,
    result: "42",
    cellId: "cell-1",
  });
});

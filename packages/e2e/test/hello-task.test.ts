import { TaskState } from "@diego/proto";
import { DiegoError } from "@diego/models";
import { Cluster, containersOf, eventually, fixtureTask, uniqueGuid, waitForState } from "../src/index.js";

// A task end to end on real etcd and Docker, through two cells.
let cluster: Cluster;

beforeAll(async () => {
  cluster = await Cluster.start();
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

test("the hello task completes with its result on one of the cells, then resolves and is deleted", async () => {
  const guid = uniqueGuid("hello");
  const desired = await cluster.tasks.desireTask(fixtureTask("hello.json", guid));
  expect(desired.task).toMatchObject({ taskGuid: guid, state: TaskState.PENDING, domain: "demo" });

  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]).catch((err: Error) => {
    throw new Error(`${err.message}\n${cluster.logs()}`);
  });
  expect(task.failed).toBe(false);
  expect(task.failureReason).toBe("");
  expect(task.result).toBe("42");
  expect(["cell-1", "cell-2"]).toContain(task.cellId);
  expect(task.annotation).toBe("first task");
  // Unix nanoseconds: within a day of now.
  const nowNs = BigInt(Date.now()) * 1_000_000n;
  expect(task.createdAt > nowNs - 86_400_000_000_000n && task.createdAt <= nowNs).toBe(true);
  expect(task.updatedAt >= task.createdAt).toBe(true);
  expect(task.firstCompletedAt >= task.createdAt).toBe(true);

  await cluster.tasks.resolvingTask({ taskGuid: guid });
  expect((await cluster.tasks.getTask({ taskGuid: guid })).state).toBe(TaskState.RESOLVING);
  await cluster.tasks.deleteTask({ taskGuid: guid });
  await expect(cluster.tasks.getTask({ taskGuid: guid })).rejects.toMatchObject({ code: "NOT_FOUND" });
  await eventually("the task's container to be removed", async () => (await containersOf(guid)).length === 0, 60_000);
});

test("a non-zero exit completes the task as failed with the text of docs/contract.md", async () => {
  const guid = uniqueGuid("exit3");
  await cluster.tasks.desireTask(
    fixtureTask("hello.json", guid, { action: { run: { path: "/bin/sh", args: ["-c", "echo failing >&2; exit 3"] } } }),
  );
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]);
  expect(task.failed).toBe(true);
  expect(task.failureReason).toBe("DEMO: Exited with status 3");
  await cluster.tasks.resolvingTask({ taskGuid: guid });
  await cluster.tasks.deleteTask({ taskGuid: guid });
  await eventually("the container to be removed", async () => (await containersOf(guid)).length === 0, 60_000);
});

test("a desired guid cannot be desired again while the task lives", async () => {
  const guid = uniqueGuid("twice");
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid));
  const err = await cluster.tasks.desireTask(fixtureTask("hello.json", guid)).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DiegoError);
  expect(err).toMatchObject({ code: "ALREADY_EXISTS" });
  await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]);
  await cluster.tasks.resolvingTask({ taskGuid: guid });
  await cluster.tasks.deleteTask({ taskGuid: guid });
});

test("ResolvingTask and DeleteTask refuse tasks in the wrong state", async () => {
  const guid = uniqueGuid("early");
  await cluster.tasks.desireTask(
    fixtureTask("hello.json", guid, { action: { run: { path: "/bin/sleep", args: ["30"] } } }),
  );
  await expect(cluster.tasks.deleteTask({ taskGuid: guid })).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
  await expect(cluster.tasks.resolvingTask({ taskGuid: guid })).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
  await expect(cluster.tasks.resolvingTask({ taskGuid: "no-such-task" })).rejects.toMatchObject({ code: "NOT_FOUND" });
  await cluster.tasks.cancelTask({ taskGuid: guid });
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]);
  expect(task.failureReason).toBe("task was cancelled");
  await cluster.tasks.resolvingTask({ taskGuid: guid });
  await cluster.tasks.deleteTask({ taskGuid: guid });
  await eventually(
    "the cancelled task's container to be removed",
    async () => (await containersOf(guid)).length === 0,
    60_000,
  );
});

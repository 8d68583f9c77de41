import { createClient } from "@diego/kit";
import type { DiegoError } from "@diego/models";
import { CellRegistryService, TaskLifecycleService, TaskService, TaskState } from "@diego/proto";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { startBbs, type RunningBbs } from "../src/start-bbs.js";
import { connect, etcdUrl, silent, uniquePrefix, waitFor, wipe } from "./support/etcd.js";
import { fakeAuctioneer } from "./support/fake-services.js";
import { taskRequest } from "./support/tasks.js";

let etcd: EtcdConnection;
let prefix: string;
let bbs: RunningBbs;
let auctioneer: Awaited<ReturnType<typeof fakeAuctioneer>>;
let tasks: ReturnType<typeof createClient<(typeof TaskService)["method"]>>;
let lifecycle: ReturnType<typeof createClient<(typeof TaskLifecycleService)["method"]>>;
let registry: ReturnType<typeof createClient<(typeof CellRegistryService)["method"]>>;

beforeAll(async () => {
  etcd = await connect();
  prefix = uniquePrefix("converge");
  auctioneer = await fakeAuctioneer();
  bbs = await startBbs(
    {
      etcdEndpoints: [etcdUrl()],
      etcdPrefix: prefix,
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      auctioneerAddress: auctioneer.address,
      convergeRepeatInterval: 250,
      kickTaskDuration: 1_000,
      expirePendingTaskDuration: 4_000,
      expireCompletedTaskDuration: 3_000,
      lockTtl: 2_000,
    },
    { logger: silent },
  );
  tasks = createClient(TaskService, bbs.address);
  lifecycle = createClient(TaskLifecycleService, bbs.address);
  registry = createClient(CellRegistryService, bbs.address);
});

afterAll(async () => {
  for (const c of [tasks, lifecycle, registry]) c.close();
  await bbs.stop();
  await auctioneer.stop();
  await wipe(etcd, prefix);
  await etcd.close();
});

/** A simulated cell that heartbeats until stopped. */
function simulatedCell(cellId: string) {
  const beat = () => registry.heartbeat({ cell: { cellId, address: "127.0.0.1:1" }, ttlMs: 2_000n });
  const timer = setInterval(() => void beat().catch(() => undefined), 500);
  return { ready: beat(), stop: () => clearInterval(timer) };
}

async function runningOn(cellId: string) {
  const req = taskRequest({ domain: "converge" });
  await tasks.desireTask(req);
  await lifecycle.startTask({ taskGuid: req.taskGuid, cellId });
  await lifecycle.runningTask({ taskGuid: req.taskGuid, cellId });
  return req.taskGuid;
}

const gone = (guid: string) =>
  tasks.getTask({ taskGuid: guid }).then(
    () => false,
    (e: DiegoError) => e.code === "NOT_FOUND",
  );

test("this single instance leads", async () => {
  await waitFor("leadership", () => bbs.isLeader());
});

test("a task whose cell stops heartbeating completes failed `cell disappeared before completion`; one on a live cell runs on", async () => {
  const doomed = simulatedCell("cell-doomed");
  const alive = simulatedCell("cell-alive");
  await Promise.all([doomed.ready, alive.ready]);
  const lost = await runningOn("cell-doomed");
  const fine = await runningOn("cell-alive");
  const claimed = taskRequest({ domain: "converge" });
  await tasks.desireTask(claimed);
  await lifecycle.startTask({ taskGuid: claimed.taskGuid, cellId: "cell-doomed" });
  doomed.stop();
  try {
    const failed = await waitFor("the lost task to fail", async () => {
      const t = await tasks.getTask({ taskGuid: lost });
      return t.state === TaskState.COMPLETED && t;
    });
    expect(failed).toMatchObject({
      failed: true,
      failureReason: "cell disappeared before completion",
      cellId: "cell-doomed",
    });
    const claimedAfter = await waitFor("the claimed task to fail", async () => {
      const t = await tasks.getTask({ taskGuid: claimed.taskGuid });
      return t.state === TaskState.COMPLETED && t;
    });
    expect(claimedAfter.failureReason).toBe("cell disappeared before completion");
    expect((await tasks.getTask({ taskGuid: fine })).state).toBe(TaskState.RUNNING);
  } finally {
    alive.stop();
  }
});

test("an unresolved completed task is deleted after expire_completed_task_duration", async () => {
  const cell = simulatedCell("cell-done");
  await cell.ready;
  try {
    const guid = await runningOn("cell-done");
    await lifecycle.completeTask({ taskGuid: guid, cellId: "cell-done", result: "r" });
    expect((await tasks.getTask({ taskGuid: guid })).state).toBe(TaskState.COMPLETED);
    await waitFor("the completed task to be deleted", () => gone(guid));
  } finally {
    cell.stop();
  }
});

test("a resolving task left alone goes back to COMPLETED after kick_task_duration", async () => {
  const cell = simulatedCell("cell-resolve");
  await cell.ready;
  try {
    const guid = await runningOn("cell-resolve");
    await lifecycle.completeTask({ taskGuid: guid, cellId: "cell-resolve" });
    await tasks.resolvingTask({ taskGuid: guid });
    await waitFor("demotion", async () => (await tasks.getTask({ taskGuid: guid })).state === TaskState.COMPLETED);
  } finally {
    cell.stop();
  }
});

test("a pending task is sent to the auctioneer again each pass, and fails when pending too long", async () => {
  const req = taskRequest({ domain: "converge" });
  await tasks.desireTask(req);
  await waitFor("re-auctions", () => auctioneer.received.filter((g) => g === req.taskGuid).length >= 3);
  const t = await waitFor("expiry", async () => {
    const task = await tasks.getTask({ taskGuid: req.taskGuid });
    return task.state === TaskState.COMPLETED && task;
  });
  expect(t).toMatchObject({ failed: true, failureReason: "not started within time limit" });
});

test("convergence metrics are counted", async () => {
  const text = await (await fetch(`http://${bbs.statusAddress}/metrics`)).text();
  const runs = Number(/^ConvergenceTaskRuns\{[^}]*\} (\d+)/m.exec(text)?.[1]);
  expect(runs).toBeGreaterThan(0);
  expect(text).toMatch(/^ConvergenceTasksKicked\{[^}]*\} [1-9]/m);
  expect(text).toMatch(/^ConvergenceTasksPruned\{[^}]*\} [1-9]/m);
});

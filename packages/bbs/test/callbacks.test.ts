import { createClient } from "@diego/kit";
import type { DiegoError } from "@diego/models";
import { CellRegistryService, TaskLifecycleService, TaskService, TaskState } from "@diego/proto";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { startBbs, type RunningBbs } from "../src/start-bbs.js";
import { connect, etcdUrl, silent, uniquePrefix, waitFor, wipe } from "./support/etcd.js";
import { callbackReceiver } from "./support/receiver.js";
import { taskRequest } from "./support/tasks.js";

let etcd: EtcdConnection;
let prefix: string;
let bbs: RunningBbs;
let receiver: Awaited<ReturnType<typeof callbackReceiver>>;
let tasks: ReturnType<typeof createClient<(typeof TaskService)["method"]>>;
let lifecycle: ReturnType<typeof createClient<(typeof TaskLifecycleService)["method"]>>;

/** How the receiver answers, by path. */
const script: Record<string, (n: number) => number | "hang"> = {
  "/ok": () => 200,
  "/busy-twice": (n) => (n <= 2 ? 503 : 200),
  "/always-busy": () => 503,
  "/gateway-timeout-then-ok": (n) => (n === 1 ? 504 : 204),
  "/server-error": () => 500,
  "/slow-then-ok": (n) => (n === 1 ? "hang" : 200),
  "/down-then-up": (n) => (n <= 3 ? 503 : 200),
};

beforeAll(async () => {
  etcd = await connect();
  prefix = uniquePrefix("callbacks");
  receiver = await callbackReceiver((path, n) => script[path.split("?")[0]]?.(n) ?? 404);
  bbs = await startBbs(
    {
      etcdEndpoints: [etcdUrl()],
      etcdPrefix: prefix,
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      callbackTimeout: 500,
      encryptionKeys: { test: "callbacks" },
      // Convergence runs often here, but a failed callback is re-sent only after kick_task_duration.
      convergeRepeatInterval: 300,
      kickTaskDuration: 3_000,
      lockTtl: 2_000,
    },
    { logger: silent },
  );
  tasks = createClient(TaskService, bbs.address);
  lifecycle = createClient(TaskLifecycleService, bbs.address);
  // The simulated cell is alive for the whole file, so convergence never fails its tasks as lost.
  const registry = createClient(CellRegistryService, bbs.address);
  await registry.heartbeat({ cell: { cellId: "cell-cb", address: "127.0.0.1:1" }, ttlMs: 600_000n });
  registry.close();
});

afterAll(async () => {
  tasks.close();
  lifecycle.close();
  await bbs.stop();
  await receiver.stop();
  await wipe(etcd, prefix);
  await etcd.close();
});

/** Desires a task with a callback to `path` and completes it through a simulated cell. */
async function complete(path: string, extra: Parameters<typeof taskRequest>[0] = {}) {
  const req = taskRequest({
    completionCallbackUrl: receiver.url(`${path}?t=${Math.random()}`),
    annotation: "note",
    ...extra,
  });
  await tasks.desireTask(req);
  await lifecycle.startTask({ taskGuid: req.taskGuid, cellId: "cell-cb" });
  await lifecycle.runningTask({ taskGuid: req.taskGuid, cellId: "cell-cb" });
  await lifecycle.completeTask({ taskGuid: req.taskGuid, cellId: "cell-cb", result: "42" });
  return req;
}

const gone = (guid: string) =>
  tasks.getTask({ taskGuid: guid }).then(
    () => false,
    (e: DiegoError) => e.code === "NOT_FOUND",
  );
const bodiesFor = (guid: string) => receiver.received.filter((r) => r.body.includes(`"task_guid":"${guid}"`));

test("delivers the whole task as JSON and deletes it", async () => {
  const req = await complete("/ok", { imageUsername: "u", imagePassword: "secret" });
  await waitFor("the task to be deleted", () => gone(req.taskGuid));
  const [got] = bodiesFor(req.taskGuid);
  expect(got.contentType).toBe("application/json");
  expect(got.body).not.toContain("secret");
  expect(got.body).not.toContain("image_password");
  expect(got.body).toMatch(/"created_at":\d+[,}]/);
  const json = JSON.parse(got.body);
  expect(json).toMatchObject({
    task_guid: req.taskGuid,
    domain: "test",
    state: "RESOLVING",
    result: "42",
    annotation: "note",
    cell_id: "cell-cb",
    root_fs: "docker:///diego/busybox",
  });
  expect(json.failed).toBe(false);
});

test("503 is retried at once; the third attempt's answer resolves the task", async () => {
  const req = await complete("/busy-twice");
  await waitFor("the task to be deleted", () => gone(req.taskGuid));
  expect(bodiesFor(req.taskGuid)).toHaveLength(3);
});

test("504 is retried too, and any 2xx deletes", async () => {
  const req = await complete("/gateway-timeout-then-ok");
  await waitFor("the task to be deleted", () => gone(req.taskGuid));
  expect(bodiesFor(req.taskGuid)).toHaveLength(2);
});

test("any other answer, even 500, deletes the task", async () => {
  const req = await complete("/server-error");
  await waitFor("the task to be deleted", () => gone(req.taskGuid));
  expect(bodiesFor(req.taskGuid)).toHaveLength(1);
});

test("a timeout is retried", async () => {
  const req = await complete("/slow-then-ok");
  await waitFor("the task to be deleted", () => gone(req.taskGuid));
  expect(bodiesFor(req.taskGuid)).toHaveLength(2);
});

test("after 3 failed attempts the task stays RESOLVING, then convergence demotes it and calls again", async () => {
  const req = await complete("/down-then-up");
  await waitFor("three attempts", () => bodiesFor(req.taskGuid).length >= 3);
  expect((await tasks.getTask({ taskGuid: req.taskGuid })).state).toBe(TaskState.RESOLVING);
  await waitFor("the task to be deleted after a later pass", () => gone(req.taskGuid));
  expect(bodiesFor(req.taskGuid).length).toBe(4);
});

test("a cancelled task's callback is delivered as well", async () => {
  const req = taskRequest({ completionCallbackUrl: receiver.url(`/ok?c=${Math.random()}`) });
  await tasks.desireTask(req);
  await tasks.cancelTask({ taskGuid: req.taskGuid });
  await waitFor("the task to be deleted", () => gone(req.taskGuid));
  expect(JSON.parse(bodiesFor(req.taskGuid)[0].body)).toMatchObject({
    failed: true,
    failure_reason: "task was cancelled",
  });
});

test("a callback URL whose host is a denied literal is INVALID_ARGUMENT at DesireTask, naming the field", async () => {
  const req = taskRequest({ completionCallbackUrl: "http://127.0.0.1:2379/v3/maintenance/defragment" });
  await expect(tasks.desireTask(req)).rejects.toMatchObject({
    code: "INVALID_ARGUMENT",
    violations: [{ field: "completion_callback_url", message: expect.stringContaining("egress policy") }],
  });
  await expect(tasks.getTask({ taskGuid: req.taskGuid })).rejects.toMatchObject({ code: "NOT_FOUND" });
});

test("a callback to a name that resolves into a denied range is not delivered, and shows no more than that", async () => {
  const port = new URL(receiver.url("/")).port;
  const req = await complete("/ok", { completionCallbackUrl: `http://localhost:${port}/ok?denied` });
  await waitFor(
    "the callback to be given up",
    async () => (await tasks.getTask({ taskGuid: req.taskGuid })).state === TaskState.RESOLVING,
  );
  await new Promise((r) => setTimeout(r, 300));
  expect(receiver.received.filter((r) => r.path.includes("denied"))).toEqual([]);
  const task = await tasks.getTask({ taskGuid: req.taskGuid });
  expect(task.state).toBe(TaskState.RESOLVING);
  expect(task.failureReason).toBe("");
});

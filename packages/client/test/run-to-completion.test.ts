import { createServer, type Server } from "node:http";
import { TaskState, type Task } from "@diego/proto";
import { DiegoClient } from "../src/diego-client.js";
import { DOCKER_GATEWAY } from "@diego/testing";
import { TestBbs } from "../src/testing/index.js";

let bbs: TestBbs;
let client: DiegoClient;
let n = 0;
const guid = () => `rtc-${process.pid}-${++n}`;
const task = (taskGuid: string) => ({
  taskGuid,
  domain: "rtc",
  rootFs: "docker:///diego/busybox",
  action: { action: { case: "run" as const, value: { path: "/bin/sh", args: ["-c", "printf 42 > /tmp/result"] } } },
  resultFile: "/tmp/result",
});

beforeAll(async () => {
  bbs = await TestBbs.start();
  client = new DiegoClient({ address: bbs.address, timeoutMs: 5_000 });
});

afterAll(async () => {
  client.close();
  await bbs.stop();
});

afterEach(() => {
  bbs.autoRun = undefined;
});

test("desires, follows through every state, resolves, deletes and returns the completed task", async () => {
  bbs.autoRun = () => ({ cellId: "cell-2", result: "42" });
  const g = guid();
  const progress: string[] = [];
  const done = await client.runToCompletion(task(g), {
    onProgress: (t) => progress.push(`${TaskState[t.state]}${t.cellId ? `@${t.cellId}` : ""}`),
  });
  expect(done).toMatchObject({
    taskGuid: g,
    state: TaskState.COMPLETED,
    failed: false,
    result: "42",
    cellId: "cell-2",
  });
  expect(progress).toEqual(["PENDING", "CLAIMED@cell-2", "RUNNING@cell-2", "COMPLETED@cell-2"]);
  expect(await bbs.has(g)).toBe(false);
});

test("a failed task is returned as failed, with its reason, and cleaned up too", async () => {
  bbs.autoRun = () => ({ failed: true, failureReason: "DEMO: Exited with status 3" });
  const g = guid();
  const done = await client.runToCompletion(task(g));
  expect(done).toMatchObject({ failed: true, failureReason: "DEMO: Exited with status 3" });
  expect(await bbs.has(g)).toBe(false);
});

test("without events the task is still followed to the end by polling", async () => {
  // The client reaches the BBS through a proxy that swallows every WatchTasks event.
  const proxy = await bbs.proxy();
  proxy.dropEvents = true;
  const lossy = new DiegoClient({ address: proxy.address, timeoutMs: 5_000 });
  bbs.autoRun = () => ({ result: "polled", stepMs: 30 });
  const g = guid();
  const done = await lossy.runToCompletion(task(g), { pollIntervalMs: 50 });
  lossy.close();
  expect(done).toMatchObject({ state: TaskState.COMPLETED, result: "polled" });
  expect(proxy.calls.filter((c) => c === "GetTask").length).toBeGreaterThan(0);
  expect(await bbs.has(g)).toBe(false);
});

test("resolve: false leaves the completed task for another reader", async () => {
  bbs.autoRun = () => ({ result: "kept" });
  const g = guid();
  await client.runToCompletion(task(g), { resolve: false });
  expect((await bbs.task(g))?.state).toBe(TaskState.COMPLETED);
});

test("a task consumed by someone else after it completed is still returned", async () => {
  // The BBS's completion-callback worker consumes it (RESOLVING, POST, delete) as it completes.
  const receiver = await callbackReceiver();
  const g = guid();
  const running = client.runToCompletion({ ...task(g), completionCallbackUrl: receiver.url }, { pollIntervalMs: 50 });
  await until(() => bbs.has(g));
  await bbs.start(g);
  await bbs.complete(g, { result: "theirs" });
  await expect(running).resolves.toMatchObject({ result: "theirs" });
  await until(async () => receiver.received.includes(g));
  await receiver.close();
});

test("a task deleted before it completed is NOT_FOUND", async () => {
  const g = guid();
  const running = client.runToCompletion(task(g), { pollIntervalMs: 50 });
  await until(() => bbs.has(g));
  await bbs.wipe(g); // as if an operator wiped it from the store
  await expect(running).rejects.toMatchObject({
    code: "NOT_FOUND",
    message: expect.stringContaining("deleted before it completed"),
  });
});

test("aborting stops following and leaves the task as it is", async () => {
  const g = guid();
  const stop = new AbortController();
  const running = client.runToCompletion(task(g), { signal: stop.signal, pollIntervalMs: 50 });
  await until(() => bbs.has(g));
  stop.abort();
  await expect(running).rejects.toMatchObject({ code: "CANCELLED" });
  expect((await bbs.task(g))?.state).toBe(TaskState.PENDING);
});

test("a bad request fails at once with the field named", async () => {
  await expect(client.runToCompletion({ ...task(guid()), rootFs: "" })).rejects.toMatchObject({
    code: "INVALID_ARGUMENT",
    violations: [{ field: "root_fs" }],
  });
});

test("a BBS that goes away and comes back is waited for; one that stays away ends the run", async () => {
  // Tasks outlive a BBS restart in etcd (the run's etcd from the jest global setup), not in memory.
  const etcd = process.env.DIEGO_TEST_ETCD;
  if (!etcd) throw new Error("DIEGO_TEST_ETCD is not set (the jest global setup starts etcd)");
  const store = {
    store: "etcd" as const,
    etcdEndpoints: [etcd],
    etcdPrefix: `/test-client/${process.pid}-${Date.now()}/`,
  };
  const first = await TestBbs.start({ bbs: store });
  const port = first.address.split(":")[1];
  const c = new DiegoClient({ address: first.address, timeoutMs: 2_000 });
  const g = guid();
  let seenPending: Task | undefined;
  const running = c.runToCompletion(task(g), {
    pollIntervalMs: 50,
    unreachableTimeoutMs: 60_000,
    onProgress: (t) => (seenPending ??= t),
  });
  running.catch(() => undefined); // awaited below; this only keeps a failure elsewhere from going unhandled
  await until(() => seenPending !== undefined);
  await first.stop();
  // The same BBS comes back on the same address with the same tasks, and the task completes there.
  const second = await TestBbs.start({ listenAddress: `127.0.0.1:${port}`, bbs: store });
  try {
    await second.start(g);
    await second.complete(g, { result: "after restart" });
    await expect(running).resolves.toMatchObject({ result: "after restart" });
    expect(await second.has(g)).toBe(false);

    const g2 = guid();
    const again = c.runToCompletion(task(g2), { pollIntervalMs: 50, unreachableTimeoutMs: 300 });
    again.catch(() => undefined);
    await until(() => second.has(g2));
    await second.stop();
    await expect(again).rejects.toMatchObject({
      code: "UNAVAILABLE",
      message: expect.stringContaining(`127.0.0.1:${port}`),
    });
  } finally {
    c.close();
    await second.stop();
    await deletePrefix(etcd, store.etcdPrefix);
  }
});

/** An HTTP server on the docker0 gateway (the egress policy denies loopback) that answers every completion callback with 200 and keeps the task guids it got. */
async function callbackReceiver(): Promise<{ url: string; received: string[]; close: () => Promise<void> }> {
  const received: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => (body += chunk.toString()));
    req.on("end", () => {
      received.push((JSON.parse(body) as { task_guid: string }).task_guid);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, DOCKER_GATEWAY, resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://${DOCKER_GATEWAY}:${port}/done`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Deletes every etcd key under the prefix (etcd's JSON gateway). */
async function deletePrefix(etcd: string, prefix: string): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
  const res = await fetch(`${etcd}/v3/kv/deleterange`, {
    method: "POST",
    body: JSON.stringify({ key: b64(prefix), range_end: b64(end) }),
  });
  if (!res.ok) throw new Error(`etcd deleterange: ${res.status}`);
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

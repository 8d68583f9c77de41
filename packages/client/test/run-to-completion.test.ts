import { createServer, type Server } from "node:http";
import { TaskState, type Task } from "@diego/proto";
import { grpcCode } from "@diego/kit";
import { DiegoClient } from "../src/diego-client.js";
import { DOCKER_GATEWAY, eventually, InProcessCluster } from "../src/testing/index.js";

// Against the one in-process cluster: the real BBS, auctioneer and a cell on the fake runtime, which runs
// each task's script.
let cluster: InProcessCluster;
let client: DiegoClient;
let n = 0;
const guid = () => `rtc-${process.pid}-${++n}`;
/** A task whose run action is `sh -c script`; its result file is /tmp/result. */
const task = (taskGuid: string, script = "printf 42 > /tmp/result") => ({
  taskGuid,
  domain: "rtc",
  rootFs: "docker:///diego/busybox",
  action: { action: { case: "run" as const, value: { path: "/bin/sh", args: ["-c", script] } } },
  resultFile: "/tmp/result",
  logSource: "DEMO",
});
const until = (what: string, check: () => boolean | Promise<boolean>) => eventually(what, check, 20_000, 10);

beforeAll(async () => {
  cluster = await InProcessCluster.start();
  await cluster.startCell({ cellId: "cell-2" });
  client = new DiegoClient({ address: cluster.address, timeoutMs: 5_000 });
});

afterAll(async () => {
  client.close();
  await cluster.stop();
});

const has = async (g: string) => (await cluster.get(g)) !== undefined;

test("desires, follows through every state, resolves, deletes and returns the completed task", async () => {
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
  expect(await has(g)).toBe(false);
});

test("a failed task is returned as failed, with its reason, and cleaned up too", async () => {
  const g = guid();
  const done = await client.runToCompletion(task(g, "exit 3"));
  expect(done).toMatchObject({ failed: true, failureReason: "DEMO: Exited with status 3", exitStatus: 3 });
  expect(await has(g)).toBe(false);
});

test("without events the task is still followed to the end by polling", async () => {
  // The client reaches the BBS through a proxy that swallows every WatchTasks event.
  const proxy = await cluster.proxy();
  proxy.fault("WatchTasks", { dropMessages: true });
  const lossy = new DiegoClient({ address: proxy.address, timeoutMs: 5_000 });
  const g = guid();
  const done = await lossy.runToCompletion(task(g, "sleep 0.3; printf polled > /tmp/result"), { pollIntervalMs: 50 });
  lossy.close();
  expect(done).toMatchObject({ state: TaskState.COMPLETED, result: "polled" });
  expect(proxy.count("GetTask")).toBeGreaterThan(0);
  expect(await has(g)).toBe(false);
});

test("a desire no BBS can take yet is tried again; a retry that finds its guid taken follows that task", async () => {
  const proxy = await cluster.proxy();
  const through = new DiegoClient({ address: proxy.address, timeoutMs: 5_000 });
  try {
    // The BBS cannot take it for a while (a restart, a leader change of etcd): tried again until it can.
    proxy.fault("DesireTask", { code: grpcCode("UNAVAILABLE"), message: "etcd: leader changed" });
    const g = guid();
    const running = through.runToCompletion(task(g, "printf again > /tmp/result"), { pollIntervalMs: 50 });
    running.catch(() => undefined); // awaited below
    await until("two refused desires", () => proxy.count("DesireTask") >= 2);
    proxy.heal();
    await expect(running).resolves.toMatchObject({ state: TaskState.COMPLETED, result: "again" });

    // The first attempt went through but its answer was lost (here: desired directly, then refused once).
    const lost = guid();
    await client.desire(task(lost, "printf mine > /tmp/result"));
    proxy.fault("DesireTask", { code: grpcCode("UNAVAILABLE") });
    const before = proxy.count("DesireTask");
    const following = through.runToCompletion(task(lost, "printf mine > /tmp/result"), { pollIntervalMs: 50 });
    following.catch(() => undefined);
    await until("one refused desire", () => proxy.count("DesireTask") > before);
    proxy.heal();
    await expect(following).resolves.toMatchObject({ taskGuid: lost, result: "mine" });
    expect(await has(lost)).toBe(false);

    // Never reachable: it gives up once the budget is spent, with the BBS's error.
    proxy.fault("DesireTask", { code: grpcCode("UNAVAILABLE"), message: "etcd: down" });
    await expect(
      through.runToCompletion(task(guid()), { pollIntervalMs: 50, desireRetryMs: 300 }),
    ).rejects.toMatchObject({ code: "UNAVAILABLE" });
  } finally {
    through.close();
    proxy.heal();
  }
});

test("resolve: false leaves the completed task for another reader", async () => {
  const g = guid();
  await client.runToCompletion(task(g, "printf kept > /tmp/result"), { resolve: false });
  expect(await cluster.get(g)).toMatchObject({ state: TaskState.COMPLETED, result: "kept" });
});

test("a task consumed by someone else after it completed is still returned", async () => {
  // The BBS's completion-callback worker consumes it (RESOLVING, POST, delete) as it completes.
  const receiver = await callbackReceiver();
  const g = guid();
  const running = client.runToCompletion(
    { ...task(g, "printf theirs > /tmp/result"), completionCallbackUrl: receiver.url },
    { pollIntervalMs: 50 },
  );
  await expect(running).resolves.toMatchObject({ result: "theirs" });
  await until("the callback", () => receiver.received.includes(g));
  await receiver.close();
});

test("a task deleted before it completed is NOT_FOUND", async () => {
  const g = guid();
  const running = client.runToCompletion(task(g, "sleep 600"), { pollIntervalMs: 50 });
  await until("the task", () => has(g));
  await cluster.wipe(g); // as if an operator wiped it from the store
  await expect(running).rejects.toMatchObject({
    code: "NOT_FOUND",
    message: expect.stringContaining("deleted before it completed"),
  });
});

test("aborting stops following and leaves the task as it is", async () => {
  const g = guid();
  const stop = new AbortController();
  const running = client.runToCompletion(task(g, "sleep 600"), { signal: stop.signal, pollIntervalMs: 50 });
  await cluster.waitFor(g, (t) => t?.state === TaskState.RUNNING);
  stop.abort();
  await expect(running).rejects.toMatchObject({ code: "CANCELLED" });
  expect((await cluster.get(g))?.state).toBe(TaskState.RUNNING);
  await client.cancel(g);
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
  // The first BBS has no auctioneer, so the task waits PENDING; the second places it (its convergence sends
  // PENDING tasks to the auctioneer every pass) on its cell.
  const first = await InProcessCluster.start({ bbs: store, auctioneer: false });
  const port = first.address.split(":")[1];
  const c = new DiegoClient({ address: first.address, timeoutMs: 2_000 });
  const g = guid();
  let seenPending: Task | undefined;
  const running = c.runToCompletion(task(g, "printf restarted > /tmp/result"), {
    pollIntervalMs: 50,
    unreachableTimeoutMs: 60_000,
    onProgress: (t) => (seenPending ??= t),
  });
  running.catch(() => undefined); // awaited below; this only keeps a failure elsewhere from going unhandled
  await until("the task PENDING", () => seenPending !== undefined);
  await first.stop();
  // The same BBS comes back on the same address with the same tasks, and the task completes there.
  const second = await InProcessCluster.start({
    listenAddress: `127.0.0.1:${port}`,
    bbs: { ...store, convergeRepeatInterval: 1_000 },
  });
  try {
    await second.startCell({ cellId: "cell-1" });
    await expect(running).resolves.toMatchObject({ result: "restarted", cellId: "cell-1" });
    expect(await second.get(g)).toBeUndefined();

    // A task left PENDING (no auctioneer), then the BBS goes away for good.
    await second.stopAuctioneer();
    const g2 = guid();
    const again = c.runToCompletion(task(g2), { pollIntervalMs: 50, unreachableTimeoutMs: 300 });
    again.catch(() => undefined);
    await until("the second task", async () => (await second.get(g2)) !== undefined);
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

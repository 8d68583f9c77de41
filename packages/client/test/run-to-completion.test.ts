import { TaskState, type Task } from "@diego/proto";
import { DiegoClient } from "../src/diego-client.js";
import { FakeBbs } from "../src/testing/fake-bbs.js";

let bbs: FakeBbs;
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
  bbs = await FakeBbs.start();
  client = new DiegoClient({ address: bbs.address, timeoutMs: 5_000 });
});

afterAll(async () => {
  client.close();
  await bbs.stop();
});

afterEach(() => {
  bbs.autoRun = undefined;
  bbs.dropEvents = false;
});

test("desires, follows through every state, resolves, deletes and returns the completed task", async () => {
  bbs.autoRun = () => ({ cellId: "cell-2", result: "42" });
  const g = guid();
  const progress: string[] = [];
  const done = await client.runToCompletion(task(g), { onProgress: (t) => progress.push(`${TaskState[t.state]}${t.cellId ? `@${t.cellId}` : ""}`) });
  expect(done).toMatchObject({ taskGuid: g, state: TaskState.COMPLETED, failed: false, result: "42", cellId: "cell-2" });
  expect(progress).toEqual(["PENDING", "CLAIMED@cell-2", "RUNNING@cell-2", "COMPLETED@cell-2"]);
  expect(bbs.tasks.has(g)).toBe(false);
});

test("a failed task is returned as failed, with its reason, and cleaned up too", async () => {
  bbs.autoRun = () => ({ failed: true, failureReason: "DEMO: Exited with status 3" });
  const g = guid();
  const done = await client.runToCompletion(task(g));
  expect(done).toMatchObject({ failed: true, failureReason: "DEMO: Exited with status 3" });
  expect(bbs.tasks.has(g)).toBe(false);
});

test("without events the task is still followed to the end by polling", async () => {
  bbs.dropEvents = true;
  bbs.autoRun = () => ({ result: "polled", stepMs: 30 });
  const g = guid();
  const done = await client.runToCompletion(task(g), { pollIntervalMs: 50 });
  expect(done).toMatchObject({ state: TaskState.COMPLETED, result: "polled" });
  expect(bbs.calls.filter((c) => c === "GetTask").length).toBeGreaterThan(0);
  expect(bbs.tasks.has(g)).toBe(false);
});

test("resolve: false leaves the completed task for another reader", async () => {
  bbs.autoRun = () => ({ result: "kept" });
  const g = guid();
  await client.runToCompletion(task(g), { resolve: false });
  expect(bbs.tasks.get(g)?.state).toBe(TaskState.COMPLETED);
});

test("a task consumed by someone else after it completed is still returned", async () => {
  const g = guid();
  const running = client.runToCompletion(task(g), { pollIntervalMs: 50 });
  await until(() => bbs.tasks.has(g));
  bbs.start(g);
  bbs.complete(g, { result: "theirs" });
  // The BBS's completion-callback worker consumes it before the runner can.
  bbs.resolveAndDelete(g);
  await expect(running).resolves.toMatchObject({ result: "theirs" });
});

test("a task deleted before it completed is NOT_FOUND", async () => {
  const g = guid();
  const running = client.runToCompletion(task(g), { pollIntervalMs: 50 });
  await until(() => bbs.tasks.has(g));
  bbs.tasks.delete(g); // as if an operator wiped it from the store
  await expect(running).rejects.toMatchObject({ code: "NOT_FOUND", message: expect.stringContaining("deleted before it completed") });
});

test("aborting stops following and leaves the task as it is", async () => {
  const g = guid();
  const stop = new AbortController();
  const running = client.runToCompletion(task(g), { signal: stop.signal, pollIntervalMs: 50 });
  await until(() => bbs.tasks.has(g));
  stop.abort();
  await expect(running).rejects.toMatchObject({ code: "CANCELLED" });
  expect(bbs.tasks.get(g)?.state).toBe(TaskState.PENDING);
});

test("a bad request fails at once with the field named", async () => {
  await expect(client.runToCompletion({ ...task(guid()), rootFs: "" })).rejects.toMatchObject({ code: "INVALID_ARGUMENT", violations: [{ field: "root_fs" }] });
});

test("a BBS that goes away and comes back is waited for; one that stays away ends the run", async () => {
  const first = await FakeBbs.start();
  const port = first.address.split(":")[1];
  const c = new DiegoClient({ address: first.address, timeoutMs: 2_000 });
  const g = guid();
  let seenPending: Task | undefined;
  const running = c.runToCompletion(task(g), { pollIntervalMs: 50, unreachableTimeoutMs: 60_000, onProgress: (t) => (seenPending ??= t) });
  await until(() => seenPending !== undefined);
  const saved = new Map(first.tasks);
  await first.stop();
  // The same BBS comes back on the same address with the same tasks, and the task completes there.
  const second = await FakeBbs.start({ listenAddress: `127.0.0.1:${port}` });
  for (const [k, v] of saved) second.tasks.set(k, v);
  second.start(g);
  second.complete(g, { result: "after restart" });
  await expect(running).resolves.toMatchObject({ result: "after restart" });
  expect(second.tasks.has(g)).toBe(false);

  const g2 = guid();
  const again = c.runToCompletion(task(g2), { pollIntervalMs: 50, unreachableTimeoutMs: 300 });
  await until(() => second.tasks.has(g2));
  await second.stop();
  await expect(again).rejects.toMatchObject({ code: "UNAVAILABLE", message: expect.stringContaining(`127.0.0.1:${port}`) });
  c.close();
});

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

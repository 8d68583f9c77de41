import { TaskState, type Task } from "@diego/proto";
import { DiegoError } from "@diego/models";
import { DiegoClient } from "../src/diego-client.js";
import { isResync } from "../src/resumable-watch.js";
import { TestBbs } from "../src/testing/index.js";

let bbs: TestBbs;
let client: DiegoClient;
let n = 0;
const guid = () => `client-test-${process.pid}-${++n}`;
const task = (taskGuid: string, domain = "client-test") => ({
  taskGuid,
  domain,
  rootFs: "docker:///diego/busybox",
  action: { action: { case: "run" as const, value: { path: "/bin/true" } } },
  imageUsername: "user",
  imagePassword: "secret",
});

beforeAll(async () => {
  bbs = await TestBbs.start();
  client = new DiegoClient({ address: bbs.address, timeoutMs: 5_000 });
});

afterAll(async () => {
  client.close();
  await bbs.stop();
});

test("desire stores the task PENDING and never returns the image password", async () => {
  const g = guid();
  const desired = await client.desire(task(g));
  expect(desired).toMatchObject({ taskGuid: g, state: TaskState.PENDING, imageUsername: "user", imagePassword: "" });
  expect(desired.createdAt).toBeGreaterThan(0n);
  const got = await client.get(g);
  expect(got.taskGuid).toBe(g);
  expect(got.imagePassword).toBe("");
});

test("errors are DiegoError with the gRPC code", async () => {
  const g = guid();
  await client.desire(task(g));
  await expect(client.desire(task(g))).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
  await expect(client.get("no-such-task")).rejects.toMatchObject({ code: "NOT_FOUND" });
  await expect(client.resolve(g)).rejects.toMatchObject({
    code: "FAILED_PRECONDITION",
    message: "Cannot transition from PENDING to RESOLVING",
  });
  const err = await client.desire({ ...task(""), domain: "" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DiegoError);
  expect((err as DiegoError).violations.map((v) => v.field)).toEqual(expect.arrayContaining(["task_guid", "domain"]));
});

test("list filters by domain, cell and state (by enum or by name)", async () => {
  const domain = `list-${guid()}`;
  const [a, b, c] = [guid(), guid(), guid()];
  for (const g of [a, b, c]) await client.desire(task(g, domain));
  await bbs.start(b, "cell-1");
  await bbs.start(c, "cell-2");
  const guids = (tasks: Task[]) => tasks.map((t) => t.taskGuid).sort();
  expect(guids(await client.list({ domain }))).toEqual([a, b, c].sort());
  expect(guids(await client.list({ domain, cellId: "cell-1" }))).toEqual([b]);
  expect(guids(await client.list({ domain, state: TaskState.CLAIMED }))).toEqual([b, c].sort());
  expect(guids(await client.list({ domain, state: "pending" }))).toEqual([a]);
  await expect(client.list({ state: "sleeping" as never })).rejects.toMatchObject({
    code: "INVALID_ARGUMENT",
    violations: [{ field: "state" }],
  });
});

test("list reads every page (any page size) and selects on labels; listPage and listAll page by hand and lazily", async () => {
  const domain = `paged-${guid()}`;
  const all: string[] = [];
  for (let i = 0; i < 7; i++) {
    const g = guid();
    all.push(g);
    await client.desire({ ...task(g, domain), labels: { parity: i % 2 ? "odd" : "even" } });
  }
  all.sort();
  expect((await client.list({ domain }, { pageSize: 2 })).map((t) => t.taskGuid)).toEqual(all);
  const odd = await client.list({ domain, labels: { parity: "odd" } }, { pageSize: 1 });
  expect(odd).toHaveLength(3);
  expect(odd.every((t) => t.labels.parity === "odd")).toBe(true);
  const first = await client.listPage({ domain }, { pageSize: 3 });
  expect(first.tasks.map((t) => t.taskGuid)).toEqual(all.slice(0, 3));
  const second = await client.listPage({ domain }, { pageSize: 3, pageToken: first.nextPageToken });
  expect(second.tasks.map((t) => t.taskGuid)).toEqual(all.slice(3, 6));
  const lazily: string[] = [];
  for await (const t of client.listAll({ domain }, { pageSize: 4 })) lazily.push(t.taskGuid);
  expect(lazily).toEqual(all);
  await expect(client.listPage({ domain }, { pageToken: "bogus" })).rejects.toMatchObject({
    code: "INVALID_ARGUMENT",
    violations: [{ field: "page_token" }],
  });
});

test("cancel, resolve and delete walk a task out of the system", async () => {
  const g = guid();
  await client.desire(task(g));
  await client.cancel(g);
  expect(await client.get(g)).toMatchObject({
    state: TaskState.COMPLETED,
    failed: true,
    failureReason: "task was cancelled",
  });
  await expect(client.cancel(g)).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
  await client.resolve(g);
  await client.delete(g);
  await expect(client.get(g)).rejects.toMatchObject({ code: "NOT_FOUND" });
});

test("watch streams created, changed and removed events of its domain until aborted", async () => {
  const domain = `watch-${guid()}`;
  const g = guid();
  const stop = new AbortController();
  const seen: string[] = [];
  const watching = (async () => {
    for await (const ev of client.watch({ domain }, { signal: stop.signal })) {
      if (isResync(ev)) continue;
      const e = ev.event;
      if (e.case === "created") seen.push(`created ${TaskState[e.value.task!.state]}`);
      if (e.case === "changed")
        seen.push(`changed ${TaskState[e.value.before!.state]}->${TaskState[e.value.after!.state]}`);
      if (e.case === "removed") seen.push("removed");
      if (seen.length === 4) stop.abort();
    }
  })().catch((err: unknown) => (DiegoError.is(err, "CANCELLED") ? undefined : Promise.reject(err)));
  // Once the BBS counts the stream as a watcher, events from here on reach us.
  await until(() => bbs.watchers > 0);
  await client.desire(task(guid(), "some-other-domain"));
  await client.desire(task(g, domain));
  await client.cancel(g);
  await client.resolve(g);
  await client.delete(g);
  await watching;
  expect(seen).toEqual(["created PENDING", "changed PENDING->COMPLETED", "changed COMPLETED->RESOLVING", "removed"]);
});

test("logs returns the output so far, and with follow the lines until the task completes", async () => {
  const g = guid();
  await client.desire(task(g));
  await bbs.start(g);
  await bbs.running(g);
  bbs.log(g, "one");
  bbs.log(g, "two", "STDERR");
  const sofar: string[] = [];
  for await (const line of client.logs(g)) sofar.push(line.message);
  expect(sofar).toEqual(["one", "two"]);

  const followed: string[] = [];
  const following = (async () => {
    for await (const line of client.logs(g, { follow: true })) followed.push(line.message);
  })();
  await until(() => followed.length === 2);
  bbs.log(g, "three");
  await until(() => followed.length === 3);
  await bbs.complete(g, { result: "ok" });
  await following;
  expect(followed).toEqual(["one", "two", "three"]);
  await expect(consume(client.logs("no-such-task"))).rejects.toMatchObject({ code: "NOT_FOUND" });
});

test("listCells returns the live cells with their capacity", async () => {
  // A BBS of its own, with exactly one cell heartbeating (the other tests' cells start on first use).
  const solo = await TestBbs.start({
    cells: [
      {
        cellId: "cell-1",
        zone: "z1",
        total: { memoryMb: 1024, diskMb: 2048, containers: 10 },
        available: { memoryMb: 512, diskMb: 2048, containers: 9 },
      },
    ],
  });
  const c = new DiegoClient({ address: solo.address, timeoutMs: 5_000 });
  const cells = await c.listCells();
  expect(cells).toHaveLength(1);
  expect(cells[0]).toMatchObject({
    cellId: "cell-1",
    zone: "z1",
    total: { memoryMb: 1024 },
    available: { memoryMb: 512 },
  });
  c.close();
  await solo.stop();
});

test("an unreachable BBS is UNAVAILABLE and the message names its address", async () => {
  const nowhere = new DiegoClient({ address: "127.0.0.1:1", timeoutMs: 3_000 });
  const err = await nowhere.get("x").catch((e: unknown) => e);
  expect(err).toMatchObject({ code: "UNAVAILABLE" });
  expect((err as Error).message).toContain("127.0.0.1:1");
  await expect(consume(nowhere.watch())).rejects.toMatchObject({
    code: "UNAVAILABLE",
    message: expect.stringContaining("127.0.0.1:1"),
  });
  nowhere.close();
});

async function consume<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

import { LogLine_Stream, TaskState, type Task } from "@diego/proto";
import { DiegoError } from "@diego/models";
import { DiegoClient } from "../src/diego-client.js";
import { isResync } from "../src/resumable-watch.js";
import { eventually, InProcessCluster } from "../src/testing/index.js";

// Against the one in-process cluster: the real BBS and auctioneer, and two real cells on the fake runtime
// (a task naming a cell's id as its placement tag runs there).
let cluster: InProcessCluster;
let client: DiegoClient;
let n = 0;
const guid = () => `client-test-${process.pid}-${++n}`;
const task = (taskGuid: string, domain = "client-test", script = "true") => ({
  taskGuid,
  domain,
  rootFs: "docker:///diego/busybox",
  action: { action: { case: "run" as const, value: { path: "/bin/sh", args: ["-c", script] } } },
  imageUsername: "user",
  imagePassword: "secret",
});
/** A task that runs until cancelled, on the given cell. */
const endless = (taskGuid: string, domain = "client-test", cellId = "cell-1") => ({
  ...task(taskGuid, domain, "sleep 600"),
  placementTags: [cellId],
});
const running = (g: string) => cluster.waitFor(g, (t) => t?.state === TaskState.RUNNING);
const until = (what: string, check: () => boolean | Promise<boolean>) => eventually(what, check, 20_000, 10);

beforeAll(async () => {
  cluster = await InProcessCluster.start();
  for (const cellId of ["cell-1", "cell-2"]) await cluster.startCell({ cellId, optionalPlacementTags: [cellId] });
  client = new DiegoClient({ address: cluster.address, timeoutMs: 5_000 });
});

afterAll(async () => {
  client.close();
  await cluster.stop();
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
  await client.desire(endless(g));
  await expect(client.desire(task(g))).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
  await expect(client.get("no-such-task")).rejects.toMatchObject({ code: "NOT_FOUND" });
  await running(g);
  await expect(client.resolve(g)).rejects.toMatchObject({
    code: "FAILED_PRECONDITION",
    message: "Cannot transition from RUNNING to RESOLVING",
  });
  await client.cancel(g);
  const err = await client.desire({ ...task(""), domain: "" }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DiegoError);
  expect((err as DiegoError).violations.map((v) => v.field)).toEqual(expect.arrayContaining(["task_guid", "domain"]));
});

test("list filters by domain, cell and state (by enum or by name)", async () => {
  const domain = `list-${guid()}`;
  const [a, b, c] = [guid(), guid(), guid()];
  await client.desire(task(a, domain));
  await client.desire(endless(b, domain, "cell-1"));
  await client.desire(endless(c, domain, "cell-2"));
  await cluster.completed(a);
  await running(b);
  await running(c);
  const guids = (tasks: Task[]) => tasks.map((t) => t.taskGuid).sort();
  expect(guids(await client.list({ domain }))).toEqual([a, b, c].sort());
  expect(guids(await client.list({ domain, cellId: "cell-1" }))).toEqual([b]);
  expect(guids(await client.list({ domain, state: TaskState.RUNNING }))).toEqual([b, c].sort());
  expect(guids(await client.list({ domain, state: "completed" }))).toEqual([a]);
  for (const g of [b, c]) await client.cancel(g);
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
  await client.desire(endless(g));
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
  const states = (e: Task | undefined) => TaskState[e!.state];
  const domain = `watch-${guid()}`;
  const g = guid();
  const stop = new AbortController();
  const seen: string[] = [];
  const watching = (async () => {
    for await (const ev of client.watch({ domain }, { signal: stop.signal })) {
      if (isResync(ev)) continue;
      const e = ev.event;
      if (e.case === "created") seen.push(`created ${states(e.value.task)}`);
      if (e.case === "changed") seen.push(`changed ${states(e.value.before)}->${states(e.value.after)}`);
      if (e.case === "removed") seen.push("removed");
      if (seen.length === 6) stop.abort();
    }
  })().catch((err: unknown) => (DiegoError.is(err, "CANCELLED") ? undefined : Promise.reject(err)));
  // Once the BBS counts the stream as a watcher, events from here on reach us.
  await until("the watch", () => cluster.watchers > 0);
  await client.desire(task(guid(), "some-other-domain"));
  await client.desire(task(g, domain));
  await cluster.completed(g); // placed, claimed, run and completed by a cell
  await client.resolve(g);
  await client.delete(g);
  await watching;
  expect(seen).toEqual([
    "created PENDING",
    "changed PENDING->CLAIMED",
    "changed CLAIMED->RUNNING",
    "changed RUNNING->COMPLETED",
    "changed COMPLETED->RESOLVING",
    "removed",
  ]);
});

test("logs returns the output so far, and with follow the lines until the task completes", async () => {
  const g = guid();
  await client.desire(task(g, "client-test", "echo one; echo two >&2; sleep 2; echo three"));
  await running(g);
  const sofar = await eventually("the first two lines", async () => {
    const lines = await consume(client.logs(g));
    return lines.length >= 2 && lines;
  });
  expect(sofar.slice(0, 2).map((l) => [l.message, l.stream])).toEqual([
    ["one", LogLine_Stream.STDOUT],
    ["two", LogLine_Stream.STDERR],
  ]);

  const followed: string[] = [];
  for await (const line of client.logs(g, { follow: true })) followed.push(line.message);
  // The cell's own last line says how the run action exited, as Diego's does.
  expect(followed).toEqual(["one", "two", "three", "Exit status 0"]);
  expect(await cluster.completed(g)).toMatchObject({ failed: false });
  await expect(consume(client.logs("no-such-task"))).rejects.toMatchObject({ code: "NOT_FOUND" });
});

test("listCells returns the live cells with their capacity", async () => {
  // A cluster of its own, with exactly one cell.
  const solo = await InProcessCluster.start({ auctioneer: false });
  await solo.startCell({ cellId: "cell-1", zone: "z1", memoryMb: 1024, diskMb: 2048, maxContainers: 10 });
  const c = new DiegoClient({ address: solo.address, timeoutMs: 5_000 });
  const cells = await c.listCells();
  expect(cells).toHaveLength(1);
  expect(cells[0]).toMatchObject({
    cellId: "cell-1",
    zone: "z1",
    total: { memoryMb: 1024, diskMb: 2048, containers: 10 },
    available: { memoryMb: 1024, diskMb: 2048, containers: 10 },
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

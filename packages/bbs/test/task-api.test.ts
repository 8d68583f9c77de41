import { createClient, type ServiceClient } from "@diego/kit";
import { DiegoError } from "@diego/models";
import {
  CellRegistryService,
  CellService,
  FailureKind,
  LockService,
  LogLine_Stream,
  TaskLifecycleService,
  TaskService,
  TaskState,
  type TaskEvent,
} from "@diego/proto";
import { startBbs, type RunningBbs } from "../src/start-bbs.js";
import { silent, waitFor } from "./support/etcd.js";
import { fakeAuctioneer, fakeCell } from "./support/fake-services.js";
import { taskRequest } from "./support/tasks.js";

type Clients = {
  tasks: ServiceClient<(typeof TaskService)["method"]>;
  lifecycle: ServiceClient<(typeof TaskLifecycleService)["method"]>;
  cells: ServiceClient<(typeof CellService)["method"]>;
  registry: ServiceClient<(typeof CellRegistryService)["method"]>;
  locks: ServiceClient<(typeof LockService)["method"]>;
};

let bbs: RunningBbs;
let auctioneer: Awaited<ReturnType<typeof fakeAuctioneer>>;
let cell: Awaited<ReturnType<typeof fakeCell>>;
let c: Clients;

beforeAll(async () => {
  auctioneer = await fakeAuctioneer();
  cell = await fakeCell([{ message: "hello from the cell", source: "DEMO" }]);
  bbs = await startBbs(
    {
      store: "memory",
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      auctioneerAddress: auctioneer.address,
      maxTaskRetries: 3,
    },
    { logger: silent },
  );
  c = {
    tasks: createClient(TaskService, bbs.address),
    lifecycle: createClient(TaskLifecycleService, bbs.address),
    cells: createClient(CellService, bbs.address),
    registry: createClient(CellRegistryService, bbs.address),
    locks: createClient(LockService, bbs.address),
  };
  await c.registry.heartbeat({ cell: { cellId: "cell-1", address: cell.address, zone: "z1" }, ttlMs: 60_000n });
});

afterAll(async () => {
  for (const client of Object.values(c)) client.close();
  await bbs.stop();
  await auctioneer.stop();
  await cell.stop();
});

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "OK",
    (e: DiegoError) => e.code,
  );

async function desired(init: Parameters<typeof taskRequest>[0] = {}) {
  const req = taskRequest(init);
  await c.tasks.desireTask(req);
  return req.taskGuid;
}

async function running(guid: string, cellId = "cell-1") {
  await c.lifecycle.startTask({ taskGuid: guid, cellId });
  await c.lifecycle.runningTask({ taskGuid: guid, cellId });
}

describe("DesireTask", () => {
  test("stores the task PENDING with its times and sends it to the auctioneer", async () => {
    const req = taskRequest({ domain: "desire" });
    const before = BigInt(Date.now()) * 1_000_000n;
    const res = await c.tasks.desireTask(req);
    expect(res.task).toMatchObject({
      taskGuid: req.taskGuid,
      state: TaskState.PENDING,
      domain: "desire",
      memoryMb: 64,
    });
    expect(res.task!.createdAt).toBeGreaterThanOrEqual(before);
    expect(res.task!.updatedAt).toBe(res.task!.createdAt);
    await waitFor("auction request", () => auctioneer.received.includes(req.taskGuid));
  });

  test("refuses an invalid request naming each bad field, and stores nothing", async () => {
    const err = (await c.tasks
      .desireTask({ taskGuid: "bad guid!", domain: "invalid-domain", rootFs: "", memoryMb: -1, cpuWeight: 101 })
      .catch((e: unknown) => e)) as DiegoError;
    expect(err.code).toBe("INVALID_ARGUMENT");
    const fields = err.violations.map((v) => v.field).sort();
    expect(fields).toEqual(expect.arrayContaining(["task_guid", "root_fs", "memory_mb", "cpu_weight", "action"]));
    expect((await c.tasks.listTasks({ domain: "invalid-domain" })).tasks).toEqual([]);
  });

  test("refuses a guid that exists with ALREADY_EXISTS", async () => {
    const req = taskRequest();
    await c.tasks.desireTask(req);
    expect(await codeOf(c.tasks.desireTask({ ...req, domain: "other" }))).toBe("ALREADY_EXISTS");
    expect((await c.tasks.getTask({ taskGuid: req.taskGuid })).domain).toBe("test");
  });
});

describe("reading tasks", () => {
  test("GetTask: NOT_FOUND for an unknown guid, INVALID_ARGUMENT for none", async () => {
    expect(await codeOf(c.tasks.getTask({ taskGuid: "nope" }))).toBe("NOT_FOUND");
    expect(await codeOf(c.tasks.getTask({ taskGuid: "" }))).toBe("INVALID_ARGUMENT");
  });

  test("ListTasks filters by domain, cell and state", async () => {
    const a = await desired({ domain: "list-a" });
    const b = await desired({ domain: "list-a" });
    await desired({ domain: "list-b" });
    await c.lifecycle.startTask({ taskGuid: b, cellId: "cell-list" });
    const guids = async (f: Parameters<typeof c.tasks.listTasks>[0]) =>
      (await c.tasks.listTasks(f)).tasks.map((t) => t.taskGuid).sort();
    expect(await guids({ domain: "list-a" })).toEqual([a, b].sort());
    expect(await guids({ cellId: "cell-list" })).toEqual([b]);
    expect(await guids({ domain: "list-a", state: TaskState.PENDING })).toEqual([a]);
  });

  test("image_password never leaves the BBS except to the claiming cell", async () => {
    const req = taskRequest({ domain: "secret", imageUsername: "user", imagePassword: "hunter2" });
    const desiredTask = (await c.tasks.desireTask(req)).task!;
    expect(desiredTask.imageUsername).toBe("user");
    expect(desiredTask.imagePassword).toBe("");
    expect((await c.tasks.getTask({ taskGuid: req.taskGuid })).imagePassword).toBe("");
    expect((await c.tasks.listTasks({ domain: "secret" })).tasks[0].imagePassword).toBe("");
    const started = await c.lifecycle.startTask({ taskGuid: req.taskGuid, cellId: "cell-1" });
    expect(started.task?.imagePassword).toBe("hunter2");
    expect(started.shouldStart).toBe(true);
  });
});

describe("the cell's transitions", () => {
  test("StartTask is idempotent for the claiming cell and refused for another", async () => {
    const g = await desired();
    expect((await c.lifecycle.startTask({ taskGuid: g, cellId: "cell-1" })).shouldStart).toBe(true);
    const again = await c.lifecycle.startTask({ taskGuid: g, cellId: "cell-1" });
    expect(again.shouldStart).toBe(false);
    expect(again.task?.state).toBe(TaskState.CLAIMED);
    expect(await codeOf(c.lifecycle.startTask({ taskGuid: g, cellId: "cell-2" }))).toBe("FAILED_PRECONDITION");
    expect(await codeOf(c.lifecycle.startTask({ taskGuid: "missing", cellId: "cell-1" }))).toBe("NOT_FOUND");
    expect(await codeOf(c.lifecycle.startTask({ taskGuid: g, cellId: "" }))).toBe("INVALID_ARGUMENT");
  });

  test("CompleteTask from another cell is refused; from the claiming cell it completes and keeps cell_id", async () => {
    const g = await desired();
    await running(g);
    expect((await c.tasks.getTask({ taskGuid: g })).state).toBe(TaskState.RUNNING);
    expect(await codeOf(c.lifecycle.completeTask({ taskGuid: g, cellId: "cell-2", result: "x" }))).toBe(
      "FAILED_PRECONDITION",
    );
    await c.lifecycle.completeTask({ taskGuid: g, cellId: "cell-1", result: "42" });
    const t = await c.tasks.getTask({ taskGuid: g });
    expect(t).toMatchObject({ state: TaskState.COMPLETED, failed: false, result: "42", cellId: "cell-1" });
    expect(t.firstCompletedAt).toBe(t.updatedAt);
    expect(await codeOf(c.lifecycle.completeTask({ taskGuid: g, cellId: "cell-1" }))).toBe("FAILED_PRECONDITION");
  });

  test("a failed completion keeps its reason", async () => {
    const g = await desired();
    await running(g);
    await c.lifecycle.completeTask({
      taskGuid: g,
      cellId: "cell-1",
      failed: true,
      failureReason: "DEMO: Exited with status 1",
    });
    expect(await c.tasks.getTask({ taskGuid: g })).toMatchObject({
      failed: true,
      failureReason: "DEMO: Exited with status 1",
    });
  });

  test("RejectTask sends the task straight back to auction, and fails it after max_task_retries", async () => {
    const g = await desired();
    await waitFor("first auction", () => auctioneer.received.filter((x) => x === g).length === 1);
    for (let i = 1; i <= 3; i++) {
      const res = await c.lifecycle.rejectTask({ taskGuid: g, rejectionReason: "insufficient resources: memory" });
      expect(res.failed).toBe(false);
      const t = await c.tasks.getTask({ taskGuid: g });
      expect(t).toMatchObject({
        state: TaskState.PENDING,
        rejectionCount: i,
        rejectionReason: "insufficient resources: memory",
      });
      await waitFor(`auction ${i + 1}`, () => auctioneer.received.filter((x) => x === g).length === i + 1);
    }
    const last = await c.lifecycle.rejectTask({ taskGuid: g, rejectionReason: "insufficient resources: memory" });
    expect(last.failed).toBe(true);
    expect(await c.tasks.getTask({ taskGuid: g })).toMatchObject({
      state: TaskState.COMPLETED,
      failed: true,
      failureReason: "insufficient resources: memory",
      rejectionCount: 4,
    });
    expect(await codeOf(c.lifecycle.rejectTask({ taskGuid: g, rejectionReason: "" }))).toBe("INVALID_ARGUMENT");
  });

  test("a permanent RejectTask fails the task at once, with the same text", async () => {
    const g = await desired();
    const res = await c.lifecycle.rejectTask({
      taskGuid: g,
      rejectionReason: "found no compatible cell for required rootfs",
      permanent: true,
    });
    expect(res.failed).toBe(true);
    expect(await c.tasks.getTask({ taskGuid: g })).toMatchObject({
      state: TaskState.COMPLETED,
      failed: true,
      failureReason: "found no compatible cell for required rootfs",
      rejectionCount: 1,
    });
  });

  test("a cell may reject a task it claimed; another cell may not", async () => {
    const g = await desired();
    await c.lifecycle.startTask({ taskGuid: g, cellId: "cell-1" });
    expect(await codeOf(c.lifecycle.rejectTask({ taskGuid: g, cellId: "cell-2", rejectionReason: "no" }))).toBe(
      "FAILED_PRECONDITION",
    );
    await c.lifecycle.rejectTask({ taskGuid: g, cellId: "cell-1", rejectionReason: "failed to create container" });
    expect(await c.tasks.getTask({ taskGuid: g })).toMatchObject({ state: TaskState.PENDING, cellId: "" });
  });
});

describe("the client's transitions", () => {
  test("CancelTask completes a running task as cancelled and tells its cell to stop it", async () => {
    const g = await desired();
    await running(g);
    await c.tasks.cancelTask({ taskGuid: g });
    expect(await c.tasks.getTask({ taskGuid: g })).toMatchObject({
      state: TaskState.COMPLETED,
      failed: true,
      failureReason: "task was cancelled",
    });
    await waitFor("cell told to cancel", () => cell.cancelled.includes(g));
    expect(await codeOf(c.tasks.cancelTask({ taskGuid: g }))).toBe("FAILED_PRECONDITION");
    expect(await codeOf(c.tasks.cancelTask({ taskGuid: "missing" }))).toBe("NOT_FOUND");
  });

  test("CancelTask of a pending task needs no cell", async () => {
    const g = await desired();
    await c.tasks.cancelTask({ taskGuid: g });
    expect(await c.tasks.getTask({ taskGuid: g })).toMatchObject({
      state: TaskState.COMPLETED,
      failureReason: "task was cancelled",
    });
  });

  test("ResolvingTask then DeleteTask removes a completed task; each refuses the wrong state", async () => {
    const g = await desired();
    expect(await codeOf(c.tasks.resolvingTask({ taskGuid: g }))).toBe("FAILED_PRECONDITION");
    expect(await codeOf(c.tasks.deleteTask({ taskGuid: g }))).toBe("FAILED_PRECONDITION");
    await running(g);
    await c.lifecycle.completeTask({ taskGuid: g, cellId: "cell-1" });
    await c.tasks.resolvingTask({ taskGuid: g });
    expect(await codeOf(c.tasks.resolvingTask({ taskGuid: g }))).toBe("FAILED_PRECONDITION");
    await c.tasks.deleteTask({ taskGuid: g });
    expect(await codeOf(c.tasks.getTask({ taskGuid: g }))).toBe("NOT_FOUND");
    expect(await codeOf(c.tasks.deleteTask({ taskGuid: g }))).toBe("NOT_FOUND");
  });
});

describe("WatchTasks", () => {
  test("streams created, each change and removed, filtered by domain, without image_password", async () => {
    const events: TaskEvent[] = [];
    const abort = new AbortController();
    const watching = (async () => {
      for await (const ev of c.tasks.watchTasks({ domain: "watched" }, { signal: abort.signal }))
        if (ev.event.case !== "live") events.push(ev);
    })().catch(() => undefined);
    await waitFor("the watch to be subscribed", () => bbs.hub.size > 0);
    await desired({ domain: "not-watched" });
    const g = await desired({ domain: "watched", imageUsername: "u", imagePassword: "p" });
    await running(g);
    await c.lifecycle.completeTask({ taskGuid: g, cellId: "cell-1", result: "r" });
    await c.tasks.resolvingTask({ taskGuid: g });
    await c.tasks.deleteTask({ taskGuid: g });
    await waitFor("6 events", () => events.length >= 6);
    abort.abort();
    await watching;
    expect(events.map((e) => e.event.case)).toEqual(["created", "changed", "changed", "changed", "changed", "removed"]);
    const states = events
      .slice(1, 5)
      .map((e) => (e.event.case === "changed" ? [e.event.value.before!.state, e.event.value.after!.state] : []));
    expect(states).toEqual([
      [TaskState.PENDING, TaskState.CLAIMED],
      [TaskState.CLAIMED, TaskState.RUNNING],
      [TaskState.RUNNING, TaskState.COMPLETED],
      [TaskState.COMPLETED, TaskState.RESOLVING],
    ]);
    const first = events[0].event;
    expect(first.case === "created" && first.value.task?.imagePassword).toBe("");
  });
});

describe("TaskLogs", () => {
  test("NOT_FOUND for an unknown task", async () => {
    const err = await (async () => {
      for await (const _ of c.tasks.taskLogs({ taskGuid: "nope" })) void _;
    })().catch((e: DiegoError) => e.code);
    expect(err).toBe("NOT_FOUND");
  });

  test("is forwarded to the task's cell; with follow, a pending task is waited for until claimed", async () => {
    const g = await desired();
    const lines: string[] = [];
    const reading = (async () => {
      for await (const line of c.tasks.taskLogs({ taskGuid: g, follow: true })) lines.push(line.message);
    })();
    await new Promise((r) => setTimeout(r, 200));
    expect(cell.logRequests.some((r) => r.taskGuid === g)).toBe(false);
    await c.lifecycle.startTask({ taskGuid: g, cellId: "cell-1" });
    await reading;
    expect(lines).toEqual(["hello from the cell"]);
    expect(cell.logRequests).toContainEqual({ taskGuid: g, follow: true });
  });

  test("a task whose cell is gone is FAILED_PRECONDITION naming the cell (not UNAVAILABLE: the BBS answered)", async () => {
    const g = await desired();
    await running(g, "cell-vanished");
    const read = async () => {
      for await (const _ of c.tasks.taskLogs({ taskGuid: g })) void _;
    };
    const before = await read().catch((e: DiegoError) => e);
    expect([before instanceof DiegoError && before.code, String(before)]).toEqual([
      "FAILED_PRECONDITION",
      expect.stringContaining('cell "cell-vanished" of task'),
    ]);
    await c.tasks.cancelTask({ taskGuid: g });
    const finished = await read().catch((e: DiegoError) => e);
    expect([finished instanceof DiegoError && finished.code, String(finished)]).toEqual([
      "FAILED_PRECONDITION",
      expect.stringContaining("the output was lost with the cell"),
    ]);
  });

  test("a running task whose cell cannot be reached is FAILED_PRECONDITION naming the cell", async () => {
    await c.registry.heartbeat({ cell: { cellId: "cell-dead", address: "127.0.0.1:1", zone: "z1" }, ttlMs: 60_000n });
    const g = await desired();
    await running(g, "cell-dead");
    const err = await (async () => {
      for await (const _ of c.tasks.taskLogs({ taskGuid: g })) void _;
    })().catch((e: DiegoError) => e);
    expect([err instanceof DiegoError && err.code, String(err)]).toEqual([
      "FAILED_PRECONDITION",
      expect.stringContaining('cell "cell-dead" of task'),
    ]);
    await c.registry.deregister({ cellId: "cell-dead" });
  });
});

describe("outcome and kept output", () => {
  test("CompleteTask stores exit status, kind, usage and times; TaskLogs serves the kept tail once the cell is gone", async () => {
    const g = await desired();
    await running(g, "cell-gone");
    await c.lifecycle.completeTask({
      taskGuid: g,
      cellId: "cell-gone",
      failed: true,
      failureReason: "DEMO: Exited with status 3",
      exitStatus: 3,
      usage: { peakMemoryBytes: 4096n, cpuTimeNs: 1000n },
      logTail: [
        { timestamp: 1n, source: "DEMO", stream: LogLine_Stream.STDOUT, message: "out" },
        { timestamp: 2n, source: "DEMO", stream: LogLine_Stream.STDERR, message: "err" },
      ],
    });
    const task = await c.tasks.getTask({ taskGuid: g });
    expect(task).toMatchObject({ exitStatus: 3, failureKind: FailureKind.EXITED, usage: { peakMemoryBytes: 4096n } });
    expect(task.createdAt <= task.claimedAt && task.claimedAt <= task.startedAt).toBe(true);
    expect(task.startedAt <= task.completedAt && task.completedAt > 0n).toBe(true);
    const lines = [];
    for await (const line of c.tasks.taskLogs({ taskGuid: g })) lines.push([line.stream, line.message, line.timestamp]);
    expect(lines).toEqual([
      [LogLine_Stream.STDOUT, "out", 1n],
      [LogLine_Stream.STDERR, "err", 2n],
    ]);
    await c.tasks.resolvingTask({ taskGuid: g });
    await c.tasks.deleteTask({ taskGuid: g });
    expect(await bbs.controller.logTail(g)).toBeUndefined();
  });

  test("a task cancelled by the client is CANCELLED with no exit status", async () => {
    const g = await desired();
    await running(g);
    await c.tasks.cancelTask({ taskGuid: g });
    const task = await c.tasks.getTask({ taskGuid: g });
    expect([task.failureKind, task.exitStatus]).toEqual([FailureKind.CANCELLED, undefined]);
  });
});

describe("cells and locks", () => {
  test("Heartbeat registers a cell, ListCells lists it, Deregister removes it", async () => {
    await c.registry.heartbeat({
      cell: { cellId: "cell-tmp", address: "127.0.0.1:1", stacks: ["s"], total: { memoryMb: 1024 } },
      ttlMs: 60_000n,
    });
    const listed = (await c.cells.listCells({})).cells.find((x) => x.cellId === "cell-tmp");
    expect(listed).toMatchObject({ address: "127.0.0.1:1", stacks: ["s"], total: { memoryMb: 1024 } });
    await c.registry.deregister({ cellId: "cell-tmp" });
    expect((await c.cells.listCells({})).cells.map((x) => x.cellId)).not.toContain("cell-tmp");
    const err = (await c.registry
      .heartbeat({ cell: { cellId: "" }, ttlMs: 0n })
      .catch((e: unknown) => e)) as DiegoError;
    expect(err.violations.map((v) => v.field).sort()).toEqual(["cell.address", "cell.cell_id", "ttl_ms"]);
  });

  test("a lock has one owner at a time", async () => {
    await c.locks.lock({ key: "k", owner: "a", value: "addr-a", ttlMs: 60_000n });
    await c.locks.lock({ key: "k", owner: "a", value: "addr-a2", ttlMs: 60_000n });
    expect(await codeOf(c.locks.lock({ key: "k", owner: "b", value: "addr-b", ttlMs: 60_000n }))).toBe(
      "FAILED_PRECONDITION",
    );
    expect(await c.locks.fetchLock({ key: "k" })).toMatchObject({ owner: "a", value: "addr-a2" });
    expect(await codeOf(c.locks.release({ key: "k", owner: "b" }))).toBe("FAILED_PRECONDITION");
    await c.locks.release({ key: "k", owner: "a" });
    expect(await codeOf(c.locks.fetchLock({ key: "k" }))).toBe("NOT_FOUND");
    await c.locks.lock({ key: "k", owner: "b", value: "addr-b", ttlMs: 60_000n });
  });
});

test("metrics and readiness are served", async () => {
  const metrics = await (await fetch(`http://${bbs.statusAddress}/metrics`)).text();
  for (const name of [
    "TasksPending",
    "TasksRunning",
    "TasksCompleted",
    "TasksResolving",
    "TasksStarted",
    "TasksFailed",
    "ConvergenceTaskRuns",
  ]) {
    expect(metrics).toContain(name);
  }
  expect((await fetch(`http://${bbs.statusAddress}/readyz`)).status).toBe(200);
});

import { status as Status } from "@grpc/grpc-js";
import { createClient } from "@diego/kit";
import { DiegoError, invalidArgument } from "@diego/models";
import { TaskLifecycleService, TaskService, TaskState } from "@diego/proto";
import { batchItemError, checkBatchSize, itemCellId, MAX_BATCH_ITEMS } from "../src/controller/batch.js";
import { startBbs, type RunningBbs } from "../src/start-bbs.js";
import { etcdUrl, silent, uniquePrefix } from "./support/etcd.js";
import { fakeAuctioneer } from "./support/fake-services.js";
import { taskRequest } from "./support/tasks.js";

describe("batch decisions", () => {
  test.each([
    { count: 0, ok: true },
    { count: 1, ok: true },
    { count: MAX_BATCH_ITEMS, ok: true },
    { count: MAX_BATCH_ITEMS + 1, ok: false },
  ])("checkBatchSize($count) accepts: $ok", ({ count, ok }) => {
    if (ok) expect(() => checkBatchSize(count)).not.toThrow();
    else expect(() => checkBatchSize(count)).toThrow(`items: at most ${MAX_BATCH_ITEMS} items per batch, got ${count}`);
  });

  test.each([
    { batch: "cell-1", item: "", acts: "cell-1" },
    { batch: "cell-1", item: "cell-1", acts: "cell-1" },
    {
      batch: "cell-1",
      item: "cell-2",
      refused: 'items[3].cell_id: must be empty or the batch\'s cell_id "cell-1", got "cell-2"',
    },
  ])("an item naming cell $item in a batch of $batch", ({ batch, item, acts, refused }) => {
    if (acts) expect(itemCellId(batch, item, 3)).toBe(acts);
    else expect(() => itemCellId(batch, item, 3)).toThrow(refused);
  });

  test.each([
    {
      err: invalidArgument([{ field: "task_guid", message: "is required" }]),
      want: {
        code: Status.INVALID_ARGUMENT,
        message: "invalid request: task_guid: is required",
        violations: [{ field: "task_guid", message: "is required" }],
      },
    },
    {
      err: new DiegoError("NOT_FOUND", 'task "x" not found'),
      want: { code: Status.NOT_FOUND, message: 'task "x" not found', violations: [] },
    },
    { err: new Error("boom"), want: { code: Status.INTERNAL, message: "boom", violations: [] } },
    { err: "odd", want: { code: Status.INTERNAL, message: "odd", violations: [] } },
  ])("batchItemError($err)", ({ err, want }) => {
    expect(batchItemError(err)).toEqual(want);
  });
});

describe("TaskBatch and LifecycleBatch on the etcd store", () => {
  let bbs: RunningBbs;
  let auctioneer: Awaited<ReturnType<typeof fakeAuctioneer>>;
  let tasks: ReturnType<typeof createClient<(typeof TaskService)["method"]>>;
  let lifecycle: ReturnType<typeof createClient<(typeof TaskLifecycleService)["method"]>>;

  beforeAll(async () => {
    auctioneer = await fakeAuctioneer();
    bbs = await startBbs(
      {
        etcdEndpoints: [etcdUrl()],
        etcdPrefix: uniquePrefix("batches"),
        listenAddress: "127.0.0.1:0",
        statusAddress: "127.0.0.1:0",
        auctioneerAddress: auctioneer.address,
      },
      { logger: silent },
    );
    tasks = createClient(TaskService, bbs.address);
    lifecycle = createClient(TaskLifecycleService, bbs.address);
  });

  afterAll(async () => {
    tasks.close();
    lifecycle.close();
    await bbs.stop();
    await auctioneer.stop();
  });

  test("a whole lifecycle in batches; each item answers as its own RPC would, in order", async () => {
    const a = taskRequest();
    const b = taskRequest();
    const desired = await tasks.taskBatch({
      items: [
        { call: { case: "desire", value: a } },
        { call: { case: "desire", value: b } },
        { call: { case: "desire", value: a } },
        { call: { case: "desire", value: { ...taskRequest(), rootFs: "" } } },
      ],
    });
    expect(desired.results.map((r) => r.result.case)).toEqual(["desire", "desire", "error", "error"]);
    expect(desired.results[0]!.result.value).toMatchObject({
      task: { taskGuid: a.taskGuid, state: TaskState.PENDING },
    });
    expect(desired.results[2]!.result.value).toMatchObject({ code: Status.ALREADY_EXISTS });
    expect(desired.results[3]!.result.value).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      violations: [expect.objectContaining({ field: "root_fs" })],
    });

    // Start, running and complete of one task in one batch apply in their order.
    const cell = "cell-1";
    const transitions = await lifecycle.lifecycleBatch({
      cellId: cell,
      items: [
        { transition: { case: "start", value: { taskGuid: a.taskGuid } } },
        { transition: { case: "running", value: { taskGuid: a.taskGuid, cellId: cell } } },
        { transition: { case: "complete", value: { taskGuid: a.taskGuid, result: "42" } } },
        { transition: { case: "start", value: { taskGuid: b.taskGuid, cellId: "cell-2" } } },
        { transition: { case: "running", value: { taskGuid: "missing" } } },
        { transition: { case: "start", value: { taskGuid: b.taskGuid } } },
        { transition: { case: "start", value: { taskGuid: b.taskGuid } } },
        { transition: { case: "reject", value: { taskGuid: b.taskGuid, rejectionReason: "no room" } } },
      ],
    });
    expect(transitions.results.map((r) => r.result.case)).toEqual([
      "start",
      "running",
      "complete",
      "error",
      "error",
      "start",
      "start",
      "reject",
    ]);
    expect(transitions.results[0]!.result.value).toMatchObject({ shouldStart: true });
    expect(transitions.results[3]!.result.value).toMatchObject({ code: Status.INVALID_ARGUMENT });
    expect(transitions.results[4]!.result.value).toMatchObject({ code: Status.NOT_FOUND });
    expect(transitions.results[5]!.result.value).toMatchObject({ shouldStart: true });
    expect(transitions.results[6]!.result.value).toMatchObject({ shouldStart: false });
    expect(transitions.results[7]!.result.value).toMatchObject({ failed: false });
    expect(await tasks.getTask({ taskGuid: a.taskGuid })).toMatchObject({
      state: TaskState.COMPLETED,
      result: "42",
      cellId: cell,
    });
    expect(await tasks.getTask({ taskGuid: b.taskGuid })).toMatchObject({ state: TaskState.PENDING, cellId: "" });

    const done = await tasks.taskBatch({
      items: [
        { call: { case: "resolving", value: { taskGuid: a.taskGuid } } },
        { call: { case: "delete", value: { taskGuid: a.taskGuid } } },
        { call: { case: "delete", value: { taskGuid: b.taskGuid } } },
        { call: { case: "cancel", value: { taskGuid: b.taskGuid } } },
        {},
      ],
    });
    expect(done.results.map((r) => r.result.case)).toEqual(["resolving", "delete", "error", "cancel", "error"]);
    expect(done.results[2]!.result.value).toMatchObject({ code: Status.FAILED_PRECONDITION });
    expect(done.results[4]!.result.value).toMatchObject({
      code: Status.INVALID_ARGUMENT,
      message: expect.stringContaining("items[4].call"),
    });
    await expect(tasks.getTask({ taskGuid: a.taskGuid })).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await tasks.getTask({ taskGuid: b.taskGuid })).toMatchObject({ failureReason: "task was cancelled" });
  });

  test("a whole batch is refused when too big or, for cells, without cell_id", async () => {
    const items = Array.from({ length: MAX_BATCH_ITEMS + 1 }, () => ({
      call: { case: "delete" as const, value: { taskGuid: "x" } },
    }));
    await expect(tasks.taskBatch({ items })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(lifecycle.lifecycleBatch({ items: [] })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: "invalid request: cell_id: is required",
    });
  });
});

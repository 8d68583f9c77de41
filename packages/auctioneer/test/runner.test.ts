import { createClient } from "@diego/kit";
import { auctioneerv1 } from "@diego/proto";
import { cellConfig, cluster, sleep, waitFor, work, type Cluster } from "./support.js";

/**
 * The auctioneer against simulated cells served over real gRPC and a fake BBS (ListCells, RejectTask,
 * Lock) that, like the real one, auctions a rejected task again at once and fails it after 3 retries.
 */
let c: Cluster;
afterEach(async () => {
  await c?.stop();
});

async function active(cl: Cluster) {
  const a = await cl.startAuctioneer();
  await waitFor(
    "the auctioneer to take the lock",
    () => a.isActive() && cl.bbs.activeAuctioneer() === a.advertiseAddress,
  );
  return a;
}

test("50 tasks spread evenly over two cells", async () => {
  c = await cluster([cellConfig("cell-1"), cellConfig("cell-2")]);
  await active(c);
  await c.bbs.desire(Array.from({ length: 50 }, (_, i) => work(`t${i}`)));
  await waitFor("all tasks claimed", () => c.bbs.count("CLAIMED") === 50);
  const perCell = ["cell-1", "cell-2"].map((id) => c.cells.cell(id)!.taskGuids.length);
  expect(perCell[0] + perCell[1]).toBe(50);
  expect(Math.abs(perCell[0] - perCell[1])).toBeLessThanOrEqual(1);
  expect(c.bbs.rejections).toEqual([]);
});

test("tasks no cell can ever run fail in one round, with the texts of docs/contract.md", async () => {
  c = await cluster([cellConfig("cell-1"), cellConfig("cell-2", { placementTags: ["gpu"] })]);
  await active(c);
  await c.bbs.desire([
    work("stack", { stack: "windows2016" }),
    work("tag", { placementTags: ["fpga"] }),
    work("memory", { memoryMb: 1_000_000 }),
    work("rootfs", { rootFs: "preloaded:nothing" }),
    work("ok"),
  ]);
  await waitFor("the four to fail", () =>
    ["stack", "tag", "memory", "rootfs"].every((g) => c.bbs.tasks.get(g)!.state === "COMPLETED"),
  );
  const failure = (g: string) => c.bbs.tasks.get(g)!;
  expect(failure("stack")).toMatchObject({
    failed: true,
    failureReason: "found no compatible cell for required rootfs",
  });
  expect(failure("rootfs")).toMatchObject({
    failed: true,
    failureReason: "found no compatible cell for required rootfs",
  });
  expect(failure("tag")).toMatchObject({
    failed: true,
    failureReason: 'found no compatible cell with placement tag "fpga"',
  });
  expect(failure("memory")).toMatchObject({ failed: true, failureReason: "insufficient resources: memory" });
  await waitFor("the good one placed", () => failure("ok").state === "CLAIMED");
  // One permanent rejection each: no retries.
  for (const g of ["stack", "tag", "memory", "rootfs"])
    expect(c.bbs.rejections.filter((r) => r.taskGuid === g)).toHaveLength(1);
});

test("a task waiting for capacity stays pending without burning retries, and starts when capacity frees up", async () => {
  const small = { total: { memoryMb: 1024, diskMb: 8192, containers: 100 } };
  c = await cluster([cellConfig("cell-1", small), cellConfig("cell-2", small)]);
  const a = await active(c);
  await c.bbs.desire([work("big-1", { memoryMb: 800 }), work("big-2", { memoryMb: 800 })]);
  await waitFor("both big tasks claimed", () => c.bbs.count("CLAIMED") === 2);
  await c.bbs.desire([work("waiter", { memoryMb: 600 })]);
  await waitFor("several retries of the waiting task", () => a.runner.waiting === 1);
  await sleep(500); // ~5 retry intervals
  expect(c.bbs.tasks.get("waiter")).toMatchObject({ state: "PENDING", rejectionCount: 0 });
  expect(c.bbs.rejections).toEqual([]);
  // big-1 finishes: its container goes and its memory comes back
  const holder = c.bbs.tasks.get("big-1")!.cellId;
  c.cells.cell(holder)!.remove("big-1");
  c.bbs.complete("big-1");
  await waitFor("the waiting task to be placed", () => c.bbs.tasks.get("waiter")!.state === "CLAIMED");
  expect(c.bbs.tasks.get("waiter")!.cellId).toBe(holder);
  expect(a.runner.waiting).toBe(0);
});

test("what a cell refuses is placed on another cell", async () => {
  c = await cluster([cellConfig("cell-1"), cellConfig("cell-2")]);
  await active(c);
  c.cells.behaviour("cell-1").refuseAll = "insufficient resources available";
  await c.bbs.desire(Array.from({ length: 6 }, (_, i) => work(`t${i}`)));
  await waitFor("all claimed", () => c.bbs.count("CLAIMED") === 6);
  expect(c.cells.cell("cell-2")!.taskGuids).toHaveLength(6);
  expect(c.bbs.rejections).toEqual([]);
});

test("what the only cell refuses is rejected with the cell's reason", async () => {
  c = await cluster([cellConfig("cell-1")]);
  await active(c);
  c.cells.behaviour("cell-1").refuseAll = "failed to resolve preloaded:busybox";
  await c.bbs.desire([work("t")]);
  await waitFor("the task to fail", () => c.bbs.tasks.get("t")!.state === "COMPLETED");
  expect(c.bbs.tasks.get("t")).toMatchObject({ failed: true, failureReason: "failed to resolve preloaded:busybox" });
});

test("when no cell answers, nothing is rejected; tasks are placed once cells answer again", async () => {
  c = await cluster([cellConfig("cell-1"), cellConfig("cell-2")]);
  const a = await active(c);
  c.cells.behaviour("cell-1").stateFails = true;
  c.cells.behaviour("cell-2").stateFails = true;
  await c.bbs.desire([work("t1"), work("t2")]);
  await waitFor("tasks held", () => a.runner.waiting === 2);
  await sleep(400);
  expect(c.bbs.rejections).toEqual([]);
  expect(c.bbs.count("PENDING")).toBe(2);
  c.cells.behaviour("cell-2").stateFails = false;
  await waitFor("both placed", () => c.bbs.count("CLAIMED") === 2);
  expect(c.cells.cell("cell-2")!.taskGuids.sort()).toEqual(["t1", "t2"]);
  const metrics = await a.metrics.registry.getSingleMetricAsString("AuctioneerFailedCellStateRequests");
  expect(metrics).toMatch(/AuctioneerFailedCellStateRequests\{service="auctioneer"\} [1-9]/);
});

test("cells that time out, answer for another id or drain sit the round out", async () => {
  c = await cluster([cellConfig("slow"), cellConfig("liar"), cellConfig("draining"), cellConfig("good")]);
  await active(c);
  c.cells.behaviour("slow").stateDelayMs = 3_000; // > cellStateTimeout
  c.cells.behaviour("liar").reportCellId = "someone-else";
  c.cells.cell("draining")!.draining = true;
  await c.bbs.desire(Array.from({ length: 4 }, (_, i) => work(`t${i}`)));
  await waitFor("all claimed", () => c.bbs.count("CLAIMED") === 4);
  expect(c.cells.cell("good")!.taskGuids).toHaveLength(4);
});

test("a task whose only compatible cell does not answer waits instead of failing", async () => {
  c = await cluster([cellConfig("plain"), cellConfig("gpu", { placementTags: ["gpu"] })]);
  const a = await active(c);
  c.cells.behaviour("gpu").stateFails = true;
  await c.bbs.desire([work("needs-gpu", { placementTags: ["gpu"] })]);
  await waitFor("held", () => a.runner.waiting === 1);
  await sleep(300);
  expect(c.bbs.rejections).toEqual([]);
  c.cells.behaviour("gpu").stateFails = false;
  await waitFor("placed", () => c.bbs.tasks.get("needs-gpu")!.cellId === "gpu");
});

test("requests that arrive while an auction runs form the next batch", async () => {
  c = await cluster([cellConfig("cell-1")]);
  const a = await active(c);
  c.cells.behaviour("cell-1").performDelayMs = 1_000;
  const rounds: number[] = [];
  a.runner.onRound((r) => rounds.push(r.tasks));
  await c.bbs.desire([work("first")]);
  // The first auction has taken its batch and is sending the work (Perform takes a second).
  await waitFor("the first batch taken", () => a.runner.waiting === 1 && a.runner.batcher.size === 0);
  await c.bbs.desire([work("a"), work("b"), work("a")]);
  await waitFor("all claimed", () => c.bbs.count("CLAIMED") === 3);
  expect(rounds).toEqual([1, 2]);
});

test("a standby refuses with UNAVAILABLE; invalid requests are refused naming the field", async () => {
  c = await cluster([cellConfig("cell-1")]);
  const first = await active(c);
  const standby = await c.startAuctioneer();
  await sleep(300);
  expect(standby.isActive()).toBe(false);
  const client = createClient(auctioneerv1.AuctioneerService, standby.address);
  await expect(client.requestTaskAuctions({ tasks: [work("x")] })).rejects.toMatchObject({
    code: "UNAVAILABLE",
    message: expect.stringContaining(first.advertiseAddress),
  });
  client.close();
  const activeClient = createClient(auctioneerv1.AuctioneerService, first.address);
  await expect(
    activeClient.requestTaskAuctions({ tasks: [work("ok"), work("", { memoryMb: -1 })] }),
  ).rejects.toMatchObject({
    code: "INVALID_ARGUMENT",
    violations: [
      { field: "tasks[1].task_guid", message: "is required" },
      { field: "tasks[1].memory_mb", message: "must be >= 0" },
    ],
  });
  expect(first.runner.batcher.size).toBe(0);
  activeClient.close();
  // both are ready: one holds the lock, the other is a standby that reaches the BBS
  for (const a of [first, standby]) expect((await fetch(`http://${a.statusAddress}/readyz`)).status).toBe(200);
  const text = await (await fetch(`http://${first.statusAddress}/metrics`)).text();
  expect(text).toContain("AuctioneerLockHeld");
  expect(text).toContain("AuctioneerFetchStatesDuration");
});

test("the BBS being down pauses auctions without losing tasks", async () => {
  c = await cluster([cellConfig("cell-1")]);
  await active(c);
  c.bbs.listCellsFails = true;
  await c.bbs.desire([work("t")]);
  await sleep(300);
  expect(c.bbs.tasks.get("t")!.state).toBe("PENDING");
  c.bbs.listCellsFails = false;
  await waitFor("placed", () => c.bbs.tasks.get("t")!.state === "CLAIMED");
});

test("work a cell does not answer Perform for goes to another cell", async () => {
  c = await cluster([cellConfig("cell-1"), cellConfig("cell-2")]);
  await active(c);
  c.cells.behaviour("cell-1").performFails = true;
  await c.bbs.desire(Array.from({ length: 4 }, (_, i) => work(`t${i}`)));
  await waitFor("all claimed", () => c.bbs.count("CLAIMED") === 4);
  expect(c.cells.cell("cell-2")!.taskGuids).toHaveLength(4);
  expect(c.bbs.rejections).toEqual([]);
});

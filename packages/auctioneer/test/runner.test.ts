import { status } from "@grpc/grpc-js";
import { createClient } from "@diego/kit";
import { auctioneerv1, TaskState, type Task } from "@diego/proto";
import { eventually } from "@diego/testing";
import { active, cluster, sleep, type Cluster } from "./support.js";

/**
 * The auctioneer against the real BBS (memory store) and real cells (fake runtime); faults are injected by
 * gRPC proxies in front of the BBS and of each cell, which fail or delay chosen calls.
 */
let c: Cluster;
afterEach(async () => {
  await c?.stop();
});

const UNAVAILABLE = { code: status.UNAVAILABLE };
const guids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
const placed = (t: Task | undefined) => !!t?.cellId;
const stateCalls = (cl: Cluster) => [...cl.cells.values()].reduce((n, cell) => n + cell.proxy.count("State"), 0);

async function allPlaced(cl: Cluster, list: readonly string[]): Promise<Map<string, string>> {
  return eventually(
    `${list.length} tasks placed`,
    async () => {
      const p = await cl.placements(list);
      return p.size === list.length && p;
    },
    60_000,
    100,
  );
}

test("50 tasks spread evenly over two cells, and single-task auctions ask no cell for its state", async () => {
  c = await cluster([["cell-1"], ["cell-2"]]);
  await active(c);
  const list = guids("t", 50);
  await Promise.all(list.map((g) => c.desire(g)));
  const where = await allPlaced(c, list);
  const perCell = ["cell-1", "cell-2"].map((id) => [...where.values()].filter((x) => x === id).length);
  expect(perCell[0] + perCell[1]).toBe(50);
  expect(Math.abs(perCell[0] - perCell[1])).toBeLessThanOrEqual(1);
  for (const g of list) expect((await c.get(g))!.rejectionCount).toBe(0);

  // The cache is warm: ten more auctions, one task each, place from it (and from the cells' Perform answers).
  const before = stateCalls(c);
  for (const g of guids("one", 10)) {
    await c.desire(g);
    await c.until(g, "placed", placed);
  }
  expect(stateCalls(c) - before).toBeLessThan(4); // the old auctioneer: 2 per auction, 20
});

test("tasks no cell can ever run fail in one round, with the texts of docs/contract.md", async () => {
  c = await cluster([["cell-1"], ["cell-2", { placementTags: ["gpu"] }]]);
  await active(c);
  const cases: [string, Record<string, unknown>, string][] = [
    ["stack", { stack: "windows2016" }, "found no compatible cell for required rootfs"],
    ["rootfs", { rootFs: "preloaded:nothing" }, "found no compatible cell for required rootfs"],
    ["tag", { placementTags: ["fpga"] }, 'found no compatible cell with placement tag "fpga"'],
    ["memory", { memoryMb: 1_000_000 }, "insufficient resources: memory"],
  ];
  for (const [g, over] of cases) await c.desire(g, over);
  await c.desire("ok");
  for (const [g, , reason] of cases) {
    const t = await c.until(g, "failed", (x) => x?.state === TaskState.COMPLETED);
    // One permanent rejection: no retries.
    expect(t).toMatchObject({ failed: true, failureReason: reason, rejectionCount: 1 });
  }
  await c.until("ok", "placed", placed);
});

test("a task waiting for capacity stays pending without burning retries, and starts when capacity frees up", async () => {
  const small = { memoryMb: 1024 };
  c = await cluster([
    ["cell-1", small],
    ["cell-2", small],
  ]);
  const a = await active(c);
  await c.desire("big-1", { memoryMb: 800 });
  await c.desire("big-2", { memoryMb: 800 });
  await allPlaced(c, ["big-1", "big-2"]);
  await c.desire("waiter", { memoryMb: 600 });
  await eventually("the waiter held", () => a.runner.waiting === 1, 30_000, 20);
  await sleep(1_000); // several rounds with their backoff (100 ms doubling to 400 ms)
  expect(await c.get("waiter")).toMatchObject({ state: TaskState.PENDING, rejectionCount: 0 });
  // big-1 ends: its capacity comes back on its cell, which the auctioneer sees when it fetches it again.
  const holder = (await c.get("big-1"))!.cellId;
  await c.tasks.cancelTask({ taskGuid: "big-1" });
  const t = await c.until("waiter", "placed", placed);
  expect(t!.cellId).toBe(holder);
  expect(t!.rejectionCount).toBe(0);
  expect(a.runner.waiting).toBe(0);
});

test("what a cell refuses is placed on another cell; the refusing cell is fetched again", async () => {
  c = await cluster([["cell-1"], ["cell-2"]]);
  await active(c);
  await c.desire("warm");
  await c.until("warm", "placed", placed);
  // cell-1 starts draining after the auctioneer cached its state: its Perform refuses the work.
  c.cells.get("cell-1")!.running.cell.draining = true;
  const before = c.cells.get("cell-1")!.proxy.count("State");
  const list = guids("t", 6);
  await Promise.all(list.map((g) => c.desire(g)));
  const where = await allPlaced(c, list);
  expect([...where.values()].every((id) => id === "cell-2")).toBe(true);
  for (const g of list) expect((await c.get(g))!.rejectionCount).toBe(0);
  expect(c.cells.get("cell-1")!.proxy.count("State")).toBeGreaterThan(before);
});

test("work the only cell does not take is rejected with the cell's reason, and fails after the BBS's retries", async () => {
  c = await cluster([["cell-1"]]);
  await active(c);
  c.cells.get("cell-1")!.proxy.fault("Perform", { code: status.UNAVAILABLE, message: "cell on fire" });
  await c.desire("t");
  const t = await c.until("t", "failed", (x) => x?.state === TaskState.COMPLETED);
  expect(t).toMatchObject({ failed: true, rejectionCount: 4 });
  expect(t!.failureReason).toContain("cell cell-1 did not take the work");
  expect(t!.failureReason).toContain("cell on fire");
});

test("when no cell answers, nothing is rejected; tasks are placed once a cell answers again", async () => {
  c = await cluster([["cell-1"], ["cell-2"]]);
  for (const cell of c.cells.values()) cell.proxy.fault("State", UNAVAILABLE);
  const a = await active(c);
  await c.desire("t1");
  await c.desire("t2");
  await eventually("tasks held", () => a.runner.waiting === 2, 30_000, 20);
  await sleep(500);
  for (const g of ["t1", "t2"]) expect(await c.get(g)).toMatchObject({ state: TaskState.PENDING, rejectionCount: 0 });
  c.cells.get("cell-2")!.proxy.fault("State", undefined);
  const where = await allPlaced(c, ["t1", "t2"]);
  expect([...where.values()]).toEqual(["cell-2", "cell-2"]);
  const metrics = await a.metrics.registry.getSingleMetricAsString("AuctioneerFailedCellStateRequests");
  expect(metrics).toMatch(/AuctioneerFailedCellStateRequests\{service="auctioneer"\} [1-9]/);
});

test("cells that time out, answer for another id or drain sit out", async () => {
  c = await cluster([["slow"], ["liar"], ["draining"], ["good"]]);
  c.cells.get("slow")!.proxy.fault("State", { delayMs: 3_000 }); // > cellStateTimeout
  c.cells.get("liar")!.proxy.retarget(c.cells.get("good")!.running.address); // answers as "good"
  c.cells.get("draining")!.running.cell.draining = true;
  await active(c);
  const list = guids("t", 4);
  for (const g of list) await c.desire(g);
  const where = await allPlaced(c, list);
  expect([...where.values()]).toEqual(["good", "good", "good", "good"]);
});

test("a task whose only compatible cell does not answer waits instead of failing", async () => {
  c = await cluster([["plain"], ["gpu", { placementTags: ["gpu"] }]]);
  c.cells.get("gpu")!.proxy.fault("State", UNAVAILABLE);
  const a = await active(c);
  await c.desire("needs-gpu", { placementTags: ["gpu"] });
  await eventually("held", () => a.runner.waiting === 1, 30_000, 20);
  await sleep(500);
  expect(await c.get("needs-gpu")).toMatchObject({ state: TaskState.PENDING, rejectionCount: 0 });
  c.cells.get("gpu")!.proxy.fault("State", undefined);
  const t = await c.until("needs-gpu", "placed", placed);
  expect(t!.cellId).toBe("gpu");
});

test("requests that arrive while an auction runs form the next batch", async () => {
  c = await cluster([["cell-1"]]);
  const a = await active(c);
  c.cells.get("cell-1")!.proxy.fault("Perform", { delayMs: 1_000 });
  const rounds: number[] = [];
  a.runner.onRound((r) => rounds.push(r.tasks));
  await c.desire("first");
  // The first auction has taken its batch and is sending the work (Perform takes a second).
  await eventually("the first batch taken", () => a.runner.waiting === 1 && a.runner.batcher.size === 0, 30_000, 5);
  await c.desire("a");
  await c.desire("b");
  await allPlaced(c, ["first", "a", "b"]);
  // a and b went in one batch (with "first" again when the BBS's convergence re-sent it meanwhile).
  expect(rounds[0]).toBe(1);
  expect(rounds[1]).toBeGreaterThanOrEqual(2);
});

test("a standby refuses with UNAVAILABLE; invalid requests are refused naming the field", async () => {
  c = await cluster([["cell-1"]]);
  const first = await active(c);
  const standby = await c.startAuctioneer();
  await sleep(300);
  expect(standby.isActive()).toBe(false);
  const work = (taskGuid: string, over: Record<string, unknown> = {}) => ({
    taskGuid,
    rootFs: "docker:///diego/busybox",
    ...over,
  });
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
  expect(text).toContain("AuctioneerCellStateRequests");
});

test("ListCells failing before the first fetch pauses auctions without losing tasks", async () => {
  c = await cluster([["cell-1"]]);
  c.bbsProxy.fault("ListCells", UNAVAILABLE);
  const a = await active(c);
  await c.desire("t");
  await eventually("ListCells tried", () => c.bbsProxy.count("ListCells") > 0, 30_000, 20);
  await sleep(300);
  expect(await c.get("t")).toMatchObject({ state: TaskState.PENDING, rejectionCount: 0 });
  expect(a.runner.batcher.size + a.runner.waiting).toBe(1);
  c.bbsProxy.fault("ListCells", undefined);
  await c.until("t", "placed", placed);
});

test("ListCells failing later: auctions go on from the cache, and a new cell is used once it lists again", async () => {
  c = await cluster([["cell-1", { memoryMb: 256 }]]);
  await active(c);
  await c.desire("warm", { memoryMb: 128 });
  await c.until("warm", "placed", placed);
  c.bbsProxy.fault("ListCells", UNAVAILABLE);
  await c.desire("cached", { memoryMb: 128 });
  expect((await c.until("cached", "placed", placed))!.cellId).toBe("cell-1");
  // cell-1 is full now; a new cell registers, but the auctioneer cannot list it yet.
  await c.addCell("cell-2", { memoryMb: 256 });
  await c.desire("later", { memoryMb: 128 });
  await sleep(500);
  expect((await c.get("later"))!.cellId).toBe("");
  c.bbsProxy.fault("ListCells", undefined);
  expect((await c.until("later", "placed", placed))!.cellId).toBe("cell-2");
});

test("work a cell does not answer Perform for goes to another cell", async () => {
  c = await cluster([["cell-1"], ["cell-2"]]);
  await active(c);
  c.cells.get("cell-1")!.proxy.fault("Perform", UNAVAILABLE);
  const list = guids("t", 4);
  await Promise.all(list.map((g) => c.desire(g)));
  const where = await allPlaced(c, list);
  expect([...where.values()].every((id) => id === "cell-2")).toBe(true);
  for (const g of list) expect((await c.get(g))!.rejectionCount).toBe(0);
});

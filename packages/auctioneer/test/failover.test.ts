import { status } from "@grpc/grpc-js";
import { TaskState, type Task } from "@diego/proto";
import { eventually } from "@diego/testing";
import { active, cluster, sleep, type Cluster } from "./support.js";

/** Two auctioneers on one real BBS: one active at a time, the standby takes over within the lock TTL. */
let c: Cluster;
afterEach(async () => {
  await c?.stop();
});

const placed = (t: Task | undefined) => !!t?.cellId;

test("the standby takes over when the active auctioneer crashes (lock expires after its TTL)", async () => {
  c = await cluster([["cell-1"], ["cell-2"]]);
  const first = await active(c);
  const second = await c.startAuctioneer();
  await sleep(300);
  expect(second.isActive()).toBe(false);
  expect(await c.activeAuctioneer()).toBe(first.advertiseAddress);

  await c.desire("before");
  await c.until("before", "placed by the first", placed);

  await first.stop({ releaseLock: false });
  // The lock (TTL 1.5 s) expires at the BBS; the standby, trying every 100 ms, takes it.
  await eventually(
    "the standby to take over",
    async () => second.isActive() && (await c.activeAuctioneer()) === second.advertiseAddress,
    30_000,
    50,
  );
  await c.desire("after");
  await c.until("after", "placed by the second", placed);
});

test("a graceful stop releases the lock so the standby takes over at once", async () => {
  c = await cluster([["cell-1"]]);
  const first = await active(c);
  const second = await c.startAuctioneer({ lockTtl: 60_000 });
  await sleep(200);
  expect(second.isActive()).toBe(false);
  await first.stop();
  await eventually("the standby to take over", () => second.isActive(), 10_000, 20);
});

test("an active auctioneer that cannot refresh its lock steps down, and comes back when it can", async () => {
  c = await cluster([["cell-1"]]);
  const a = await active(c);
  c.bbsProxy.fault("Lock", { code: status.UNAVAILABLE });
  await eventually("stepped down within the TTL", () => !a.isActive(), 30_000, 20);
  await c.bbsProxy.fault("Lock", undefined);
  await eventually("active again", () => a.isActive(), 30_000, 20);
  // Whatever was desired meanwhile, the BBS's convergence sends again.
  await c.desire("t");
  await c.until("t", "placed", placed);
});

test("the tasks a crashed auctioneer held are placed by the next one after the BBS sends them again", async () => {
  c = await cluster([["cell-1", { memoryMb: 100 }]]);
  const first = await active(c);
  const second = await c.startAuctioneer();
  await c.desire("hog", { memoryMb: 100 });
  await c.until("hog", "placed", placed);
  await c.desire("waiter", { memoryMb: 100 });
  await eventually("the waiter held", () => first.runner.waiting === 1, 30_000, 20);
  await first.stop({ releaseLock: false });
  await eventually("second active", () => second.isActive(), 30_000, 20);
  await c.tasks.cancelTask({ taskGuid: "hog" });
  const t = await c.until("waiter", "placed by the second", placed);
  expect(t).toMatchObject({ cellId: "cell-1", rejectionCount: 0 });
  expect(t!.state).not.toBe(TaskState.COMPLETED);
});

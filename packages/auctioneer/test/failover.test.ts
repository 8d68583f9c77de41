import { cellConfig, cluster, sleep, waitFor, work, type Cluster } from "./support.js";

/** Two auctioneers on one BBS: one active at a time, the standby takes over within the lock TTL. */
let c: Cluster;
afterEach(async () => {
  await c?.stop();
});

test("the standby takes over when the active auctioneer crashes (lock expires after its TTL)", async () => {
  c = await cluster([cellConfig("cell-1"), cellConfig("cell-2")]);
  const first = await c.startAuctioneer();
  await waitFor("first active", () => first.isActive());
  const second = await c.startAuctioneer();
  await sleep(300);
  expect(second.isActive()).toBe(false);
  expect(c.bbs.activeAuctioneer()).toBe(first.advertiseAddress);

  await c.bbs.desire([work("before")]);
  await waitFor("placed by the first", () => c.bbs.tasks.get("before")!.state === "CLAIMED");

  await first.stop({ releaseLock: false });
  // The lock (TTL 1.5 s) expires at the BBS; the standby, trying every 100 ms, takes it.
  await waitFor(
    "the standby to take over",
    () => second.isActive() && c.bbs.activeAuctioneer() === second.advertiseAddress,
  );

  await c.bbs.desire([work("after")]);
  await waitFor("placed by the second", () => c.bbs.tasks.get("after")!.state === "CLAIMED");
});

test("a graceful stop releases the lock so the standby takes over at once", async () => {
  c = await cluster([cellConfig("cell-1")]);
  const first = await c.startAuctioneer();
  await waitFor("first active", () => first.isActive());
  const second = await c.startAuctioneer({ lockTtl: 60_000 });
  await sleep(200);
  expect(second.isActive()).toBe(false);
  await first.stop();
  await waitFor("the standby to take over", () => second.isActive(), 10_000);
});

test("an active auctioneer that cannot refresh its lock steps down, and comes back when it can", async () => {
  c = await cluster([cellConfig("cell-1")]);
  const a = await c.startAuctioneer();
  await waitFor("active", () => a.isActive());
  c.bbs.lockFails = true;
  await waitFor("stepped down within the TTL", () => !a.isActive());
  await c.bbs.desire([work("t")]); // no one holds the lock any more: the fake BBS cannot send it
  expect(c.bbs.tasks.get("t")!.state).toBe("PENDING");
  c.bbs.lockFails = false;
  await waitFor("active again", () => a.isActive());
  await c.bbs.converge();
  await waitFor("placed", () => c.bbs.tasks.get("t")!.state === "CLAIMED");
});

test("the tasks a crashed auctioneer held are placed by the next one after the BBS sends them again", async () => {
  const small = { total: { memoryMb: 100, diskMb: 8192, containers: 10 } };
  c = await cluster([cellConfig("cell-1", small)]);
  const first = await c.startAuctioneer();
  await waitFor("first active", () => first.isActive());
  const second = await c.startAuctioneer();
  await c.bbs.desire([work("hog", { memoryMb: 100 }), work("waiter", { memoryMb: 100 })]);
  await waitFor("one placed, one waiting", () => c.bbs.count("CLAIMED") === 1 && first.runner.waiting === 1);
  await first.stop({ releaseLock: false });
  await waitFor("second active", () => second.isActive());
  const hog = [...c.bbs.tasks.values()].find((t) => t.state === "CLAIMED")!;
  c.cells.cell("cell-1")!.remove(hog.work.taskGuid);
  c.bbs.complete(hog.work.taskGuid);
  await c.bbs.converge();
  await waitFor(
    "the waiting task placed by the second",
    () => c.bbs.count("CLAIMED") === 1 && c.bbs.count("PENDING") === 0,
  );
  expect(c.bbs.rejections).toEqual([]);
});

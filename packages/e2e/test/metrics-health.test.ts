import { TaskState } from "@diego/proto";
import { Cluster, EtcdServer, eventually, fixtureTask, uniqueGuid, waitForState } from "../src/index.js";

// Each service's metrics move after a few tasks; the BBS's readiness flips while etcd is down.
let etcd: EtcdServer;
let cluster: Cluster;

beforeAll(async () => {
  etcd = await EtcdServer.start();
  cluster = await Cluster.start({ etcd: etcd.url, cells: [{ id: "cell-1" }] });
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  await etcd?.remove();
});

async function metrics(address: string): Promise<string> {
  const res = await fetch(`http://${address}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** The sum of every sample of a metric (all label sets). */
function sample(text: string, name: string): number {
  return text
    .split("\n")
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

test("counters move after a few tasks", async () => {
  const before = await metrics(cluster.bbsStatusAddress);
  const guids = [uniqueGuid("m"), uniqueGuid("m"), uniqueGuid("m")];
  for (const g of guids) await cluster.tasks.desireTask(fixtureTask("hello.json", g));
  for (const g of guids) await waitForState(cluster.tasks, g, [TaskState.COMPLETED]);

  const bbs = await metrics(cluster.bbsStatusAddress);
  expect(sample(bbs, "TasksStarted") - sample(before, "TasksStarted")).toBeGreaterThanOrEqual(3);
  expect(sample(bbs, "TasksSucceeded") - sample(before, "TasksSucceeded")).toBeGreaterThanOrEqual(3);
  expect(sample(bbs, "TasksCompleted")).toBeGreaterThanOrEqual(3);
  expect(bbs).toMatch(/TasksStarted\{[^}]*cell_id="cell-1"/);
  expect(sample(bbs, "grpc_server_handled_total")).toBeGreaterThan(0);

  const auctioneer = await metrics(cluster.auctioneerStatusAddress);
  expect(sample(auctioneer, "AuctioneerTaskAuctionsStarted")).toBeGreaterThanOrEqual(3);

  const cell = await metrics(cluster.cell("cell-1").statusAddress);
  expect(sample(cell, "ContainerCreationDuration_count")).toBeGreaterThanOrEqual(3);
  expect(sample(cell, "CellTasksSucceeded")).toBeGreaterThanOrEqual(3);
  expect(cell).toContain('cell_id="cell-1"');

  for (const address of [
    cluster.bbsStatusAddress,
    cluster.auctioneerStatusAddress,
    cluster.cell("cell-1").statusAddress,
  ]) {
    expect((await fetch(`http://${address}/healthz`)).status).toBe(200);
    expect((await fetch(`http://${address}/readyz`)).status).toBe(200);
  }
  for (const g of guids) {
    await cluster.tasks.resolvingTask({ taskGuid: g });
    await cluster.tasks.deleteTask({ taskGuid: g });
  }
});

test("the BBS is not ready while etcd is down, and ready again when it is back", async () => {
  const ready = async () => (await fetch(`http://${cluster.bbsStatusAddress}/readyz`)).status;
  await etcd.stop();
  await eventually("BBS /readyz to say 503", async () => (await ready()) === 503, 60_000);
  expect((await fetch(`http://${cluster.bbsStatusAddress}/healthz`)).status).toBe(200);
  await etcd.resume();
  await eventually("BBS /readyz to say 200", async () => (await ready()) === 200, 60_000);
  // And it works again.
  const guid = uniqueGuid("after-etcd");
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid));
  expect(await waitForState(cluster.tasks, guid, [TaskState.COMPLETED])).toMatchObject({ result: "42" });
});

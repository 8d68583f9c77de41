import { createClient } from "@diego/kit";
import { TaskService } from "@diego/proto";
import { EtcdServer } from "@diego/testing";
import { startBbs, type RunningBbs } from "../src/start-bbs.js";
import { silent, waitFor } from "./support/etcd.js";
import { taskRequest } from "./support/tasks.js";

let members: EtcdServer[];
let bbs: RunningBbs;
let tasks: ReturnType<typeof createClient<(typeof TaskService)["method"]>>;

beforeAll(async () => {
  members = await EtcdServer.startCluster(3);
  bbs = await startBbs(
    {
      etcdEndpoints: members.map((m) => m.url),
      etcdPrefix: "/etcd-cluster",
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      etcdRequestTimeout: 2_000,
    },
    { logger: silent },
  );
  tasks = createClient(TaskService, bbs.address, { defaultTimeoutMs: 5_000 });
}, 60_000);

afterAll(async () => {
  tasks?.close();
  await bbs?.stop();
  for (const m of members ?? []) m.thaw();
  await Promise.all((members ?? []).map((m) => m.remove()));
});

const ready = async () => (await fetch(`http://${bbs.statusAddress}/readyz`)).status;

/** Desires `n` tasks one after the other; returns how many failed and the guids that were stored. */
async function desireMany(n: number): Promise<{ failed: number; stored: string[] }> {
  let failed = 0;
  const stored: string[] = [];
  for (let i = 0; i < n; i++) {
    const req = taskRequest({ domain: "etcd-cluster" });
    try {
      await tasks.desireTask(req);
      stored.push(req.taskGuid);
    } catch {
      failed++;
    }
  }
  return { failed, stored };
}

async function leaderMember(): Promise<EtcdServer> {
  return waitFor("an etcd leader", async () => {
    for (const m of members) if (await m.isLeader()) return m;
    return undefined;
  });
}

test("the etcd leader of a three-member cluster killed: the BBS stays ready and keeps storing tasks", async () => {
  await waitFor("ready", async () => (await ready()) === 200);
  const leader = await leaderMember();
  await leader.kill();
  const killedAt = Date.now();
  // The first calls may meet the dead member or the election; within seconds every call goes through.
  await waitFor("a write to succeed", async () => (await desireMany(1)).failed === 0, 30_000);
  const recoveredMs = Date.now() - killedAt;
  const after = await desireMany(20);
  expect(after.failed).toBe(0);
  expect(await ready()).toBe(200);
  for (const g of after.stored) expect((await tasks.getTask({ taskGuid: g })).taskGuid).toBe(g);
  process.stdout.write(`etcd leader killed: writes go through again after ${recoveredMs} ms\n`);
  await leader.resume();
}, 90_000);

test("an etcd member frozen (SIGSTOP): the BBS keeps storing tasks through the others", async () => {
  await waitFor("every member healthy", async () => {
    for (const m of members)
      if (
        !(await fetch(`${m.url}/health`).then(
          (r) => r.ok,
          () => false,
        ))
      )
        return false;
    return true;
  });
  const follower = await waitFor("a follower", async () => {
    for (const m of members) if (!(await m.isLeader())) return m;
    return undefined;
  });
  follower.freeze();
  const frozenAt = Date.now();
  try {
    // Calls that meet the frozen member time out (2 s); its breaker then sends them to the others.
    await waitFor("ten writes in a row to succeed", async () => (await desireMany(10)).failed === 0, 60_000);
    process.stdout.write(`etcd member frozen: ten writes in a row succeed after ${Date.now() - frozenAt} ms\n`);
  } finally {
    follower.thaw();
  }
}, 90_000);

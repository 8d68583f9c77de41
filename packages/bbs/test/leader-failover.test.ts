import { createClient } from "@diego/kit";
import { CellRegistryService, TaskLifecycleService, TaskService, TaskState } from "@diego/proto";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { Keys } from "../src/keys.js";
import { spawnBbs, type BbsProcess } from "./support/bbs-process.js";
import { connect, etcdUrl, uniquePrefix, waitFor, wipe } from "./support/etcd.js";
import { taskRequest } from "./support/tasks.js";

const LOCK_TTL_MS = 3_000;

let etcd: EtcdConnection;
let prefix: string;
const processes: BbsProcess[] = [];

beforeAll(async () => {
  etcd = await connect();
  prefix = uniquePrefix("failover");
});

afterAll(async () => {
  for (const p of processes) if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
  await Promise.all(processes.map((p) => p.exited));
  await wipe(etcd, prefix);
  await etcd.close();
});

async function leader(): Promise<string | undefined> {
  const res = await etcd.client.kv.range({ key: Buffer.from(new Keys(prefix).leader) });
  return res.kvs[0]?.value.toString();
}

test("when the leading BBS is killed -9, the other takes over convergence within the lease TTL and loses no task", async () => {
  const flags = (id: string) => [
    "--etcd-endpoints",
    etcdUrl(),
    "--etcd-prefix",
    prefix,
    "--instance-id",
    id,
    "--listen-address",
    "127.0.0.1:0",
    "--status-address",
    "127.0.0.1:0",
    "--lock-ttl",
    `${LOCK_TTL_MS}ms`,
    "--converge-repeat-interval",
    "300ms",
    // The only cell goes silent: that cannot be told from the BBS's own isolation, so it is held this long.
    "--cell-loss-hold-max",
    "2s",
  ];
  const [a, b] = await Promise.all([spawnBbs(flags("bbs-a")), spawnBbs(flags("bbs-b"))]);
  processes.push(a, b);
  const first = await waitFor("a leader", leader);
  const [leading, survivor] = first === "bbs-a" ? [a, b] : [b, a];
  const survivorId = first === "bbs-a" ? "bbs-b" : "bbs-a";

  // Work goes through the instance that will survive; a simulated cell runs half of it.
  const tasks = createClient(TaskService, survivor.address);
  const lifecycle = createClient(TaskLifecycleService, survivor.address);
  const registry = createClient(CellRegistryService, leading.address);
  try {
    await registry.heartbeat({ cell: { cellId: "cell-f", address: "127.0.0.1:1" }, ttlMs: 2_000n });
    const guids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const req = taskRequest({ domain: "failover" });
      await tasks.desireTask(req);
      guids.push(req.taskGuid);
      if (i < 5) {
        await lifecycle.startTask({ taskGuid: req.taskGuid, cellId: "cell-f" });
        await lifecycle.runningTask({ taskGuid: req.taskGuid, cellId: "cell-f" });
      }
    }

    const killedAt = Date.now();
    leading.child.kill("SIGKILL");
    await leading.exited;
    // The cell dies with it (it stops heartbeating): only a converging leader can notice.
    await waitFor("the survivor to lead", async () => (await leader()) === survivorId, 30_000);
    const takeoverMs = Date.now() - killedAt;
    process.stdout.write(`leader takeover after kill -9: ${takeoverMs} ms (lock TTL ${LOCK_TTL_MS} ms)\n`);

    for (const g of guids.slice(0, 5)) {
      const t = await waitFor(`${g} to be failed by the new leader`, async () => {
        const task = await tasks.getTask({ taskGuid: g });
        return task.state === TaskState.COMPLETED && task;
      });
      expect(t.failureReason).toBe("cell disappeared before completion");
    }
    const rest = await Promise.all(guids.slice(5).map((g) => tasks.getTask({ taskGuid: g })));
    expect(rest.map((t) => t.state)).toEqual(Array(5).fill(TaskState.PENDING));
    expect((await tasks.listTasks({ domain: "failover" })).tasks).toHaveLength(10);

    // A clean stop hands leadership over at once (the lease is revoked).
    survivor.child.kill("SIGTERM");
    expect(await survivor.exited).toBe(0);
    expect(await leader()).toBeUndefined();
  } finally {
    tasks.close();
    lifecycle.close();
    registry.close();
  }
});

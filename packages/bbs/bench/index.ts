// pnpm bench:bbs — the BBS's throughput and read latency, beside the raw etcd compare-and-swap rate
// measured in the same run against the same etcd.
//
//   DIEGO_BENCH_ETCD=http://…   use this etcd instead of starting one (data dir and port of its own)
//   BENCH_SECONDS=10            length of each lifecycle run
//   BENCH_TASKS=250000          tasks stored for the read benchmark
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { createClient, createLogger, GrpcServer } from "@diego/kit";
import { create } from "@bufbuild/protobuf";
import { transition } from "@diego/models";
import {
  auctioneerv1,
  TaskCreateRequestSchema,
  TaskLifecycleService,
  TaskSchema,
  TaskService,
  TaskState,
  type Task,
} from "@diego/proto";
import { Etcd3 } from "etcd3";
import { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { Keys } from "../src/keys.js";
import { EtcdTaskStore } from "../src/store/etcd-task-store.js";
import { encodeTask } from "../src/store/task-entry.js";
import { EtcdServer, freePort } from "@diego/testing";
import { rawGrpcRate } from "./raw-grpc.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const STORED = Number(process.env.BENCH_TASKS ?? 250_000);
const DOMAIN_SIZE = 1_000;
const logger = createLogger("bench", "warn");

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

async function main() {
  const own = process.env.DIEGO_BENCH_ETCD ? undefined : await EtcdServer.start();
  const etcdUrl = process.env.DIEGO_BENCH_ETCD ?? own!.url;
  const etcd = new Etcd3({ hosts: etcdUrl, grpcOptions: { "grpc.max_receive_message_length": 64 * 1024 * 1024 } });
  const children: ChildProcess[] = [];
  const auctioneer = await sinkAuctioneer();
  try {
    console.log(
      `diego BBS benchmark — etcd ${etcdUrl}${own ? " (started by the benchmark)" : ""}, ${SECONDS} s per run\n`,
    );

    // 1. The raw etcd CAS rate, same etcd, same run.
    const cas1 = await rawCas(etcd, 1);
    const cas32 = await rawCas(etcd, 32);
    console.log("raw etcd compare-and-swap (one key per txn: compare mod_revision, put):");
    console.log(`  1 client    ${fmt(cas1)} txn/s`);
    console.log(`  32 clients  ${fmt(cas32)} txn/s\n`);

    // 2a. The same lifecycles straight on the etcd task store (in this process, no gRPC): the
    // store and its write coalescer alone.
    const store1 = await storeLifecycles(etcdUrl, 1);
    const store32 = await storeLifecycles(etcdUrl, 32);
    console.log(
      "lifecycles on the etcd task store itself (no gRPC; 6 CAS writes each, grouped by the write coalescer):",
    );
    console.log(`  1 client    ${fmt(store1.rate)} lifecycles/s (${fmt(store1.tasksPerTxn, 1)} tasks per txn)`);
    console.log(
      `  32 clients  ${fmt(store32.rate)} lifecycles/s (${fmt(store32.tasksPerTxn, 1)} tasks per txn); ${fmt((store32.rate * 6) / cas32, 2)} task writes per raw CAS txn\n`,
    );

    // 2b. The raw gRPC ceiling: grpc-js echoing a few bytes, no protobuf and no work, same machine.
    const echo1 = await rawGrpcRate(1, SECONDS);
    const echo32 = await rawGrpcRate(32, SECONDS);
    console.log("raw gRPC (grpc-js echo of 16 bytes, server in its own process, no work):");
    console.log(`  1 client    ${fmt(echo1)} calls/s = at most ${fmt(echo1 / 6)} lifecycles/s of 6 calls`);
    console.log(`  32 clients  ${fmt(echo32)} calls/s = at most ${fmt(echo32 / 6)} lifecycles/s of 6 calls\n`);

    // 2c. Full lifecycles through the BBS's gRPC API, the BBS in a process of its own.
    const prefix = `/bench-${Date.now()}`;
    const bbs = await spawnBbs(etcdUrl, prefix, auctioneer.address, []);
    children.push(bbs.child);
    const life1 = await lifecycles(bbs.address, 1);
    const life32 = await lifecycles(bbs.address, 32);
    console.log(
      "full lifecycles through gRPC (desire → start → running → complete → resolving → delete; simulated cells):",
    );
    for (const [clients, rate, cas, echo] of [
      [1, life1, cas1, echo1],
      [32, life32, cas32, echo32],
    ] as const) {
      console.log(
        `  ${String(clients).padEnd(2)} client${clients > 1 ? "s" : " "}  ${fmt(rate)} lifecycles/s = ${fmt(rate * 6)} task writes/s;` +
          ` ratio to raw CAS: ${fmt(rate / cas, 2)} lifecycles per CAS txn, ${fmt((rate * 6) / cas, 2)} writes per CAS txn;` +
          ` ${fmt((100 * rate * 6) / echo)} % of the raw gRPC call rate`,
      );
    }
    console.log(`  tasks sent to the (sink) auctioneer: ${fmt(auctioneer.received())}`);
    console.log(`  BBS RSS after the lifecycle runs: ${fmt(rssMb(bbs.child.pid!))} MiB\n`);
    await stop(bbs.child);

    // 3. Reads with STORED tasks.
    const readPrefix = `/bench-read-${Date.now()}`;
    const seedSeconds = await seed(etcd, readPrefix, STORED);
    console.log(
      `stored ${fmt(STORED)} tasks (${fmt(STORED / DOMAIN_SIZE)} domains of ${fmt(DOMAIN_SIZE)}) directly in etcd in ${fmt(seedSeconds, 1)} s`,
    );
    const started = Date.now();
    const reader = await spawnBbs(etcdUrl, readPrefix, auctioneer.address, [
      "--expire-completed-task-duration",
      "24h",
      "--converge-repeat-interval",
      "1h",
    ]);
    children.push(reader.child);
    console.log(
      `BBS started and loaded them in ${fmt((Date.now() - started) / 1000, 1)} s; RSS ${fmt(rssMb(reader.child.pid!))} MiB`,
    );
    const reads = await readLatencies(reader.address);
    console.log(
      `  GetTask    p50 ${fmt(reads.get.p50, 2)} ms  p99 ${fmt(reads.get.p99, 2)} ms  (${fmt(reads.get.n)} calls, target p99 < 5 ms)`,
    );
    console.log(
      `  ListTasks  p50 ${fmt(reads.list.p50, 2)} ms  p99 ${fmt(reads.list.p99, 2)} ms  (one ${fmt(DOMAIN_SIZE)}-task domain, ${fmt(reads.list.n)} calls, target < 50 ms)`,
    );
    console.log(`  BBS RSS with ${fmt(STORED)} tasks: ${fmt(rssMb(reader.child.pid!))} MiB (target < 1024 MiB)`);
    await stop(reader.child);
    await deletePrefix(etcd, prefix);
    await deletePrefix(etcd, readPrefix);
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await auctioneer.stop();
    etcd.close();
    await own?.remove();
  }
}

/** CAS transactions per second with `inFlight` concurrent clients, each on keys of its own. */
async function rawCas(etcd: Etcd3, inFlight: number): Promise<number> {
  const prefix = `/bench-cas-${inFlight}-${Date.now()}/`;
  const value = Buffer.alloc(200, 1);
  let done = 0;
  const until = Date.now() + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async (_, worker) => {
      const key = Buffer.from(`${prefix}${worker}`);
      let revision = Number((await etcd.kv.put({ key, value })).header.revision);
      while (Date.now() < until) {
        const res = await etcd.kv.txn({
          compare: [{ key, target: "Mod", result: "Equal", mod_revision: revision }],
          success: [{ request_put: { key, value } }],
        });
        if (!res.succeeded) throw new Error("raw CAS lost a compare on a key of its own");
        revision = Number(res.header.revision);
        done++;
      }
    }),
  );
  const rate = done / SECONDS;
  await deletePrefix(etcd, prefix);
  return rate;
}

async function lifecycles(address: string, clients: number): Promise<number> {
  const tasks = createClient(TaskService, address);
  const lifecycle = createClient(TaskLifecycleService, address);
  let done = 0;
  let n = 0;
  const run = async (worker: number, until: number, count: () => void) => {
    const cellId = `sim-cell-${worker % 8}`;
    while (Date.now() < until) {
      const taskGuid = `life-${clients}-${worker}-${n++}`;
      await tasks.desireTask({
        taskGuid,
        domain: `bench-${worker % 4}`,
        rootFs: "docker:///diego/busybox",
        memoryMb: 64,
        action: { action: { case: "run", value: { path: "/bin/true", user: "root" } } },
      });
      const { shouldStart } = await lifecycle.startTask({ taskGuid, cellId });
      if (!shouldStart) throw new Error("lost a claim nobody else made");
      await lifecycle.runningTask({ taskGuid, cellId });
      await lifecycle.completeTask({ taskGuid, cellId, result: "ok" });
      await tasks.resolvingTask({ taskGuid });
      await tasks.deleteTask({ taskGuid });
      count();
    }
  };
  // Warm up (JIT, connections), then measure.
  await Promise.all(Array.from({ length: clients }, (_, w) => run(w, Date.now() + 1_000, () => undefined)));
  const until = Date.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: clients }, (_, w) => run(w, until, () => done++)));
  tasks.close();
  lifecycle.close();
  return done / SECONDS;
}

async function storeLifecycles(etcdUrl: string, clients: number): Promise<{ rate: number; tasksPerTxn: number }> {
  const etcd = new EtcdConnection({ endpoints: [etcdUrl], requestTimeoutMs: 10_000, probeIntervalMs: 5_000, logger });
  await etcd.start();
  const prefix = `/bench-store-${clients}-${Date.now()}`;
  let txns = 0;
  let tasksInTxns = 0;
  const store = new EtcdTaskStore({
    etcd,
    keys: new Keys(prefix),
    logger,
    observeTxn: (tasks) => {
      txns++;
      tasksInTxns += tasks;
    },
  });
  await store.start();
  const now = () => BigInt(Date.now()) * 1_000_000n;
  let n = 0;
  let done = 0;
  const run = async (worker: number, until: number, count: () => void) => {
    while (Date.now() < until) {
      const g = `store-${worker}-${n++}`;
      const request = create(TaskCreateRequestSchema, {
        taskGuid: g,
        domain: "bench",
        rootFs: "docker:///diego/busybox",
        action: { action: { case: "run", value: { path: "/bin/true", user: "root" } } },
      });
      const cellId = "sim-cell";
      await store.apply(g, (c) => transition("desire", "client", c, { request }, now()));
      await store.apply(g, (c) => transition("start", "cell", c, { cellId }, now()));
      await store.apply(g, (c) => transition("running", "cell", c, { cellId }, now()));
      await store.apply(g, (c) =>
        transition("complete", "cell", c, { cellId, failed: false, failureReason: "", result: "ok" }, now()),
      );
      await store.apply(g, (c) => transition("resolve", "client", c, {}, now()));
      await store.apply(g, (c) => transition("delete", "client", c, {}, now()));
      count();
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, w) => run(w, Date.now() + 1_000, () => undefined)));
  txns = 0;
  tasksInTxns = 0;
  const until = Date.now() + SECONDS * 1000;
  await Promise.all(Array.from({ length: clients }, (_, w) => run(w, until, () => done++)));
  await store.stop();
  await etcd.close();
  return { rate: done / SECONDS, tasksPerTxn: tasksInTxns / Math.max(1, txns) };
}

/** Writes `count` COMPLETED tasks straight into etcd under the BBS's key layout, 128 per txn. */
async function seed(etcd: Etcd3, prefix: string, count: number): Promise<number> {
  const keys = new Keys(prefix);
  const started = Date.now();
  const now = BigInt(Date.now()) * 1_000_000n;
  const template = create(TaskSchema, {
    domain: "",
    rootFs: "docker:///diego/busybox",
    env: [{ name: "GREETING", value: "hello" }],
    memoryMb: 64,
    diskMb: 64,
    cpuWeight: 50,
    action: {
      action: {
        case: "run",
        value: { path: "/bin/sh", args: ["-c", "echo $GREETING; printf 42 > /tmp/result"], user: "root" },
      },
    },
    resultFile: "/tmp/result",
    logGuid: "bench",
    logSource: "BENCH",
    annotation: "a stored task",
    state: TaskState.COMPLETED,
    createdAt: now,
    updatedAt: now,
    firstCompletedAt: now,
    result: "42",
  });
  let next = 0;
  const batch = 128;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < count) {
        const start = next;
        next = Math.min(count, next + batch);
        const success = [];
        for (let i = start; i < next; i++) {
          const task: Task = {
            ...template,
            taskGuid: `stored-${i}`,
            domain: `domain-${Math.floor(i / DOMAIN_SIZE)}`,
            cellId: `cell-${i % 50}`,
          };
          success.push({
            request_put: { key: Buffer.from(keys.task(task.taskGuid)), value: Buffer.from(encodeTask(task)) },
          });
        }
        await etcd.kv.txn({ success });
      }
    }),
  );
  return (Date.now() - started) / 1000;
}

async function readLatencies(address: string) {
  const tasks = createClient(TaskService, address);
  const time = async (fn: () => Promise<unknown>) => {
    const t0 = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  for (let i = 0; i < 500; i++) await tasks.getTask({ taskGuid: `stored-${i}` });
  const get: number[] = [];
  for (let i = 0; i < 5_000; i++) {
    const guid = `stored-${Math.floor(Math.random() * STORED)}`;
    get.push(await time(() => tasks.getTask({ taskGuid: guid })));
  }
  const list: number[] = [];
  for (let i = 0; i < 10; i++) await tasks.listTasks({ domain: "domain-0", pageSize: DOMAIN_SIZE });
  for (let i = 0; i < 200; i++) {
    const domain = `domain-${Math.floor(Math.random() * (STORED / DOMAIN_SIZE))}`;
    list.push(
      await time(async () => {
        const res = await tasks.listTasks({ domain, pageSize: DOMAIN_SIZE });
        if (res.tasks.length !== DOMAIN_SIZE || res.nextPageToken)
          throw new Error(`ListTasks(${domain}) returned ${res.tasks.length} tasks`);
      }),
    );
  }
  tasks.close();
  const summary = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b);
    return { n: xs.length, p50: pct(sorted, 50), p99: pct(sorted, 99) };
  };
  return { get: summary(get), list: summary(list) };
}

async function spawnBbs(etcdUrl: string, prefix: string, auctioneerAddress: string, extra: string[]) {
  const port = await freePort();
  const statusPort = await freePort();
  const address = `127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      "packages/bbs/src/main.ts",
      "--etcd-endpoints",
      etcdUrl,
      "--etcd-prefix",
      prefix,
      "--listen-address",
      address,
      "--status-address",
      `127.0.0.1:${statusPort}`,
      "--auctioneer-address",
      auctioneerAddress,
      "--log-level",
      "warn",
      ...extra,
    ],
    { cwd: root, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, NODE_OPTIONS: "" } },
  );
  const until = Date.now() + 300_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${statusPort}/readyz`)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null) throw new Error(`the BBS exited with ${child.exitCode}`);
    if (Date.now() > until) throw new Error("the BBS did not become ready");
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, address };
}

async function sinkAuctioneer() {
  let received = 0;
  const server = new GrpcServer({ logger });
  server.add(auctioneerv1.AuctioneerService, {
    requestTaskAuctions: (req) => {
      received += req.tasks.length;
      return {};
    },
  });
  const port = await server.listen("127.0.0.1:0");
  return { address: `127.0.0.1:${port}`, received: () => received, stop: () => server.shutdown(100) };
}

async function deletePrefix(etcd: Etcd3, prefix: string) {
  await etcd.delete().prefix(prefix);
}

function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

async function stop(child: ChildProcess) {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// pnpm bench:cell — the cell's latency and throughput against raw dockerode in the same run.
//
// Latency: DesireTask → process running (the task's RUNNING transition) and → COMPLETED for a trivial
// task on an idle cell, p50/p99, beside raw create+start+wait+remove of the same image. Each raw run
// and each task starts on an idle cell: its last container removed, its pool full again.
// Throughput: tasks/s with work queued at concurrency C, beside raw Docker at the same concurrency, in
// rounds of each in turn (BENCH_ROUNDS), each timed in steady state (see steadyRate).
// The cell runs with its container pool (docs/performance.md, "The container pool") of C containers
// per shape, unless BENCH_POOL=0; the warm-up makes the task's shape one the cell has seen.
//
// The whole real path runs here: etcd (started by the benchmark), the BBS, the auctioneer and one
// cell, in this process. The times of the transitions are the BBS's own (updated_at − created_at of
// the changes seen on WatchTasks). The raw path creates its containers with the limits the cell gives
// the same task (memory, CPU shares, pids, network, capabilities, init). Ends with one JSON line.
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { auctioneerConfig, startAuctioneer } from "@diego/auctioneer";
import { startBbs } from "@diego/bbs";
import { EtcdServer, eventually, percentile, steadyRate } from "@diego/testing";
import { createClient, createLogger } from "@diego/kit";
import { CellService, TaskService, TaskState, type Task } from "@diego/proto";
import Docker from "dockerode";
import { cpuShares } from "../src/executor/task-runner.js";
import { TASK_CAPABILITIES } from "../src/runtime/privileged-config.js";
import { cellConfig, startCell } from "../src/index.js";

const IMAGE = "diego/busybox:latest";
const LATENCY_RUNS = Number(process.env.BENCH_RUNS ?? 40);
const THROUGHPUT_TASKS = Number(process.env.BENCH_TASKS ?? 48);
const THROUGHPUT_ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const POOL = process.env.BENCH_POOL !== "0";

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

/** CPU time the whole machine spent busy (every core, every process: the engine's too), in ms. */
async function machineBusyMs(): Promise<number> {
  const [, ...fields] = (await readFile("/proc/stat", "utf8")).split("\n")[0]!.trim().split(/\s+/);
  const [user, nice, system, , , irq, softirq, steal] = fields.map(Number);
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) * 10; // USER_HZ is 100
}

/** CPU time of this process (BBS, auctioneer, cell and the bench's own client), in ms. */
function ownCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Runs `fn`, giving what it gives and the CPU ms per item it cost the machine and this process. */
async function withCpu<T>(items: number, fn: () => Promise<T>) {
  const [machine0, own0] = [await machineBusyMs(), ownCpuMs()];
  const result = await fn();
  const [machine1, own1] = [await machineBusyMs(), ownCpuMs()];
  return { result, machineMs: machine1 - machine0, ownMs: own1 - own0, items };
}

async function main() {
  const docker = new Docker({ socketPath: "/var/run/docker.sock" });
  const logger = createLogger("bench", "warn");
  const etcd = await EtcdServer.start();
  const bbs = await startBbs(
    {
      etcdEndpoints: [etcd.url],
      etcdPrefix: "/bench-cell",
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
    },
    { logger },
  );
  const auctioneer = await startAuctioneer(
    auctioneerConfig({ listenAddress: "127.0.0.1:0", statusAddress: "127.0.0.1:0", bbsAddress: bbs.address }),
    { logger },
  );
  const cellId = `bench-cell-${process.pid}`;
  const workDir = join(tmpdir(), `diego-${cellId}`);
  const config = cellConfig({
    cellId,
    listenAddress: "127.0.0.1:0",
    statusAddress: "127.0.0.1:0",
    bbsAddress: bbs.address,
    workDir,
    memoryMb: 65536,
    diskMb: 65536,
    containerPool: POOL,
    containerPoolSize: CONCURRENCY,
  });
  const stop = await startCell(config, { logger });
  const poolStats = () => stop.cell.parts.pool?.stats();
  const cells = createClient(CellService, bbs.address);
  await eventually("the cell to register", async () =>
    (await cells.listCells({})).cells.some((c) => c.cellId === cellId),
  );
  const client = createClient(TaskService, bbs.address);

  // Every transition as the BBS made it: the task's own timestamps, per guid.
  const seen = new Map<string, Map<TaskState, Task>>();
  const waiters = new Map<string, () => void>();
  const watching = new AbortController();
  void (async () => {
    for await (const ev of client.watchTasks({ domain: "bench" }, { signal: watching.signal })) {
      if (ev.event.case !== "changed") continue;
      const after = ev.event.value.after!;
      const states = seen.get(after.taskGuid) ?? new Map<TaskState, Task>();
      states.set(after.state, after);
      seen.set(after.taskGuid, states);
      if (after.state === TaskState.COMPLETED) waiters.get(after.taskGuid)?.();
    }
  })().catch(() => undefined);
  await new Promise((r) => setTimeout(r, 200));

  let n = 0;
  const MEMORY_MB = 32;
  const CPU_WEIGHT = 50;
  const task = () => ({
    taskGuid: `bench-${process.pid}-${n++}`,
    domain: "bench",
    rootFs: `docker:///diego/busybox`,
    memoryMb: MEMORY_MB,
    cpuWeight: CPU_WEIGHT,
    action: { action: { case: "run" as const, value: { path: "/bin/true" } } },
  });
  // What the cell's Docker runtime sets for this task (packages/cell/src/runtime/docker-runtime.ts).
  const rawLimits = {
    Init: true,
    Memory: MEMORY_MB * 1024 * 1024,
    MemorySwap: MEMORY_MB * 1024 * 1024,
    CpuShares: cpuShares(CPU_WEIGHT) || undefined,
    PidsLimit: config.maxPids || undefined,
    SecurityOpt: ["no-new-privileges"],
    CapDrop: ["ALL"],
    CapAdd: TASK_CAPABILITIES,
    NetworkMode: config.network ? "bridge" : "none",
  };
  const sinceDesire = (t: Task | undefined) => (t ? Number(t.updatedAt - t.createdAt) / 1e6 : NaN);

  async function oneTask(): Promise<{ running: number; completed: number }> {
    const t = task();
    const completed = new Promise<void>((resolve) => waiters.set(t.taskGuid, resolve));
    await client.desireTask(t);
    await completed;
    waiters.delete(t.taskGuid);
    const states = seen.get(t.taskGuid)!;
    seen.delete(t.taskGuid);
    const done = states.get(TaskState.COMPLETED)!;
    if (done.failed) throw new Error(`bench task failed: ${done.failureReason}`);
    await client.resolvingTask({ taskGuid: t.taskGuid });
    await client.deleteTask({ taskGuid: t.taskGuid });
    return { running: sinceDesire(states.get(TaskState.RUNNING)), completed: sinceDesire(done) };
  }

  const rawUntilExit: number[] = [];
  async function rawOne(): Promise<number> {
    const t0 = performance.now();
    const c = await docker.createContainer({
      Image: IMAGE,
      Cmd: ["/bin/true"],
      HostConfig: rawLimits,
    });
    await c.start();
    await c.wait();
    rawUntilExit.push(performance.now() - t0);
    await c.remove({ force: true });
    return performance.now() - t0;
  }

  const idle = () =>
    eventually(
      "an idle cell",
      async () => {
        const pool = poolStats();
        if (pool && (pool.ready < CONCURRENCY || pool.creating > 0)) return false;
        // Every task container is named diego-<cell>-<guid>, a claimed pooled one too.
        const tasks = await docker.listContainers({ all: true, filters: { name: [`diego-${cellId}-`] } });
        return tasks.length === 0;
      },
      60_000,
      20,
    );

  // Warm up both paths.
  for (let i = 0; i < 3; i++) {
    await oneTask();
    await rawOne();
  }

  // The pool has the shape now: let it fill before measuring.
  if (POOL) await eventually("the pool to fill", async () => poolStats()!.ready >= CONCURRENCY, 60_000);
  const warmPool = poolStats();
  const cellRunning: number[] = [];
  const cellCompleted: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < LATENCY_RUNS; i++) {
    // Interleave so both see the same engine conditions.
    const r = await oneTask();
    cellRunning.push(r.running);
    cellCompleted.push(r.completed);
    // An idle cell before the raw run and the next task: the container removed, the pool refilled (its
    // creates would slow the raw run down).
    await idle();
    raw.push(await rawOne());
  }

  const rawExit = rawUntilExit.slice(-LATENCY_RUNS);
  const latencyPool = poolStats();
  // Rounds of raw and cell in turn, so that both see the engine's drift over the run alike.
  const measureRound = (fn: () => Promise<unknown>) =>
    withCpu(THROUGHPUT_TASKS, () => steadyRate(THROUGHPUT_TASKS, CONCURRENCY, async () => void (await fn())));
  type Round = Awaited<ReturnType<typeof measureRound>>;
  const throughput = { raw: [] as Round[], cell: [] as Round[] };
  for (let r = 0; r < THROUGHPUT_ROUNDS; r++) {
    throughput.raw.push(await measureRound(rawOne));
    throughput.cell.push(await measureRound(oneTask));
  }
  const sum = (runs: Round[], of: (r: Round) => number) => runs.reduce((a, r) => a + of(r), 0);
  const total = (runs: Round[]) => ({
    seconds: sum(runs, (r) => r.result.seconds),
    counted: sum(runs, (r) => r.result.counted),
    machineMsPer: sum(runs, (r) => r.machineMs) / sum(runs, (r) => r.items),
    ownMsPer: sum(runs, (r) => r.ownMs) / sum(runs, (r) => r.items),
  });
  const [rawRun, cellRun] = [total(throughput.raw), total(throughput.cell)];
  const rate = (t: { seconds: number; counted: number }) => t.counted / t.seconds;
  const roundRatios = throughput.cell.map((c, i) => (rate(c.result) / rate(throughput.raw[i]!.result)).toFixed(2));
  const endPool = poolStats();
  const poolLine = (from: ReturnType<typeof poolStats>, to: ReturnType<typeof poolStats>) =>
    from && to
      ? `pool: ${to.hits - from.hits} tasks took a ready container, ${to.misses - from.misses} found none (a new one was made), ${to.discarded - from.discarded} discarded`
      : "pool: off (BENCH_POOL=0)";

  const p50 = (xs: number[]) => percentile(xs, 50);
  const p99 = (xs: number[]) => percentile(xs, 99);
  const lines = [
    `cell benchmark (real etcd, BBS, auctioneer and cell${POOL ? ` with a container pool of ${CONCURRENCY}` : ", no container pool"}; ${LATENCY_RUNS} sequential trivial tasks /bin/true on ${IMAGE}, idle cell, a shape the cell has seen)`,
    `  DesireTask → RUNNING     p50 ${fmt(p50(cellRunning))}  p99 ${fmt(p99(cellRunning))}`,
    `  DesireTask → COMPLETED   p50 ${fmt(p50(cellCompleted))}  p99 ${fmt(p99(cellCompleted))}`,
    `  raw dockerode create+start+wait+remove  p50 ${fmt(p50(raw))}  p99 ${fmt(p99(raw))}`,
    `  raw without the remove (create+start+wait)  p50 ${fmt(p50(rawExit))}  p99 ${fmt(p99(rawExit))}  (the cell removes after CompleteTask, off the task's path)`,
    `  ratio COMPLETED/raw: p50 ${(p50(cellCompleted) / p50(raw)).toFixed(2)}x (target ${POOL ? "<= 0.3x" : "<= 1.25x"}), p99 ${(p99(cellCompleted) / p99(raw)).toFixed(2)}x; p99 under 1 s: ${p99(cellCompleted) < 1000 ? "yes" : "NO"}`,
    `  ${poolLine(warmPool, latencyPool)}`,
    `throughput (${THROUGHPUT_ROUNDS} rounds of raw, then cell, of ${THROUGHPUT_TASKS} tasks each, ${CONCURRENCY} in flight; timed from the ${CONCURRENCY}th completion of a round to its last)`,
    `  cell ${rate(cellRun).toFixed(2)} tasks/s   raw ${rate(rawRun).toFixed(2)} containers/s   ratio ${((rate(cellRun) / rate(rawRun)) * 100).toFixed(0)}% (target >= ${POOL ? 95 : 90}%); by round ${roundRatios.join(", ")}`,
    `  ${poolLine(latencyPool, endPool)}`,
    `  CPU per task, whole machine: cell ${fmt(cellRun.machineMsPer)}, raw ${fmt(rawRun.machineMsPer)}; of it in this process (BBS, auctioneer, cell, client): cell ${fmt(cellRun.ownMsPer)}, raw ${fmt(rawRun.ownMsPer)}`,
  ];
  console.log(lines.join("\n"));
  const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
  const summary = JSON.stringify({
    bench: "cell",
    completed_p50_ms: round(p50(cellCompleted), 1),
    raw_p50_ms: round(p50(raw), 1),
    latency_ratio_p50: round(p50(cellCompleted) / p50(raw)),
    throughput_ratio: round(rate(cellRun) / rate(rawRun)),
    completed_p99_ms: round(p99(cellCompleted), 1),
    raw_p99_ms: round(p99(raw), 1),
    concurrency: CONCURRENCY,
    pool: POOL,
  });

  watching.abort();
  client.close();
  cells.close();
  await stop();
  await auctioneer.stop();
  await bbs.stop();
  await etcd.remove();
  await rm(workDir, { recursive: true, force: true });
  // Last, after everything stopped (their log lines come before it).
  console.log(summary);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

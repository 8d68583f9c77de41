/**
 * pnpm bench:auction — placement speed, fairness and packing of the pure scheduler, and auctions through
 * gRPC with 10 and 1,000 simulated cell servers (a load generator, not a cell: they keep a simulated cell's
 * books) against the real BBS and auctioneer. Ends with one JSON line of the headline figures. Everything
 * runs in this one process on this machine.
 */
import { startBbs } from "@diego/bbs";
import { createClient } from "@diego/kit";
import { compatibility, demand, fits, LIMITS } from "@diego/models";
import { orderBatch, schedule, score, cellLoad, type CellSnapshot, type TaskRequest } from "@diego/auction";
import { auctioneerv1, CellRegistryService } from "@diego/proto";
import { pino } from "pino";
import { auctioneerConfig, startAuctioneer } from "../src/index.js";
import { SimulatedCellServers } from "./simulated-cell-servers.js";
import { fleetFigures, simulateAuction, simulatedFleet } from "./simulated-cells.js";

const logger = pino({ level: "silent" });
const quick = process.argv.includes("--quick");
// BENCH_PARTS=schedule,spread,packing,e2e: what to run (default all; figures of parts not run are null).
const parts = new Set((process.env.BENCH_PARTS ?? "schedule,spread,packing,e2e").split(","));
const line = (s = "") => process.stdout.write(`${s}\n`);
const ms = (x: number) => `${x.toFixed(1)} ms`;
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)];
const median = (xs: number[]) => percentile(xs, 0.5);

/** A deterministic pseudo-random sequence, so every run schedules the same batch. */
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const bigCell = { total: { memoryMb: 65_536, diskMb: 131_072, containers: 250 } };

function mixedTasks(n: number, seed = 1): TaskRequest[] {
  const r = rng(seed);
  const sizes = [128, 256, 512, 1024];
  return Array.from({ length: n }, (_, i) => ({
    taskGuid: `task-${i}`,
    rootFs: "docker:///diego/busybox",
    placementTags: [],
    memoryMb: sizes[Math.floor(r() * sizes.length)],
    diskMb: sizes[Math.floor(r() * sizes.length)],
  }));
}

function equalTasks(n: number): TaskRequest[] {
  return Array.from({ length: n }, (_, i) => ({
    taskGuid: `task-${i}`,
    rootFs: "docker:///diego/busybox",
    placementTags: [],
    memoryMb: 256,
    diskMb: 256,
  }));
}

/**
 * Raw baseline: the same rules with what Diego does, a linear scan scoring every cell for every task
 * (O(tasks × cells)), on plain objects.
 */
function scheduleByScoringEveryCell(tasks: TaskRequest[], cells: CellSnapshot[], weight = 0.25) {
  const copies = [...cells]
    .sort((a, b) => (a.cellId < b.cellId ? -1 : 1))
    .map((c) => ({ ...c, available: { ...c.available! }, tasks: [...c.tasks] }));
  let placed = 0;
  for (const t of orderBatch(tasks)) {
    let best = -1;
    let bestScore = Infinity;
    let bestLoad = Infinity;
    for (let i = 0; i < copies.length; i++) {
      const c = copies[i];
      if (compatibility(t, c) !== "ok" || !fits(t, c.available)) continue;
      const s = score(c, t, weight);
      const l = cellLoad(c, weight);
      if (s < bestScore || (s === bestScore && l < bestLoad)) {
        best = i;
        bestScore = s;
        bestLoad = l;
      }
    }
    if (best < 0) continue;
    const c = copies[best];
    const need = demand(t);
    c.available.memoryMb -= need.memoryMb;
    c.available.diskMb -= need.diskMb;
    c.available.containers -= 1;
    c.tasks.push(t);
    c.startingContainerCount++;
    placed++;
  }
  return placed;
}

function time(fn: () => unknown, runs: number): number[] {
  fn(); // warm up
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    fn();
    out.push(performance.now() - t0);
  }
  return out;
}

/** Returns the median ms to schedule 10,000 tasks on 1,000 cells. */
function scheduleSpeed(): number {
  let at1000 = NaN;
  line("## 1. Time to schedule 10,000 tasks (pure, one batch, mixed sizes 128–1024 MB)");
  line("| cells | schedule() median (min) | raw baseline: score every cell | speed-up | placed |");
  line("|---|---|---|---|---|");
  for (const cellCount of [1000, 100]) {
    const cells = simulatedFleet(cellCount, bigCell).map((c) => c.state());
    const tasks = mixedTasks(10_000);
    let placed = 0;
    const ours = time(
      () => {
        const r = schedule(tasks, cells);
        placed = r.placements.reduce((a, p) => a + p.tasks.length, 0);
      },
      quick ? 3 : 7,
    );
    const base = time(() => scheduleByScoringEveryCell(tasks, cells), quick ? 1 : 3);
    if (cellCount === 1000) at1000 = median(ours);
    line(
      `| ${cellCount} | ${ms(median(ours))} (${ms(Math.min(...ours))}) | ${ms(median(base))} | ${(median(base) / median(ours)).toFixed(1)}× | ${placed} |`,
    );
  }
  line("Target: under 100 ms for 1,000 cells.");
  line();
  return at1000;
}

function spread() {
  line("## 2. Spread of equal tasks (max − min tasks per cell; target ≤ 1, Diego's simulation tolerance)");
  line("| tasks | cells | min | max | max − min |");
  line("|---|---|---|---|---|");
  const scenarios: [number, number][] = [
    [8, 4],
    [40, 10],
    [200, 20],
    [800, 40],
    [10_000, 100],
    [10_000, 1000],
  ];
  for (const [n, cellCount] of scenarios) {
    const fleet = simulatedFleet(cellCount, bigCell);
    simulateAuction(fleet, equalTasks(n));
    const f = fleetFigures(fleet);
    line(`| ${n} | ${cellCount} | ${f.minPerCell} | ${f.maxPerCell} | ${f.maxPerCell - f.minPerCell} |`);
  }
  // The same over many small auctions (as tasks trickle in), not one batch.
  const fleet = simulatedFleet(100, bigCell);
  const tasks = equalTasks(5_000);
  for (let i = 0; i < tasks.length; i += 50) simulateAuction(fleet, tasks.slice(i, i + 50));
  const f = fleetFigures(fleet);
  line(`| 5,000 in 100 auctions of 50 | 100 | ${f.minPerCell} | ${f.maxPerCell} | ${f.maxPerCell - f.minPerCell} |`);
  line();
}

/** Reference packer: first-fit decreasing over cells in id order (packs tight; ignores spreading). */
function firstFitDecreasing(tasks: TaskRequest[], cells: CellSnapshot[]) {
  const avail = cells.map((c) => ({ ...c.available! }));
  let memory = 0;
  let placed = 0;
  for (const t of orderBatch(tasks)) {
    const i = avail.findIndex((a) => fits(t, a));
    if (i < 0) continue;
    avail[i].memoryMb -= t.memoryMb;
    avail[i].diskMb -= t.diskMb;
    avail[i].containers -= 1;
    memory += t.memoryMb;
    placed++;
  }
  return { memory, placed };
}

function packing() {
  line(
    "## 3. Packing of mixed sizes against total capacity (100 cells of 16 GB / 32 GB / 64 containers; demand 130 % of memory)",
  );
  const cellTemplate = { total: { memoryMb: 16_384, diskMb: 32_768, containers: 64 } };
  const r = rng(7);
  const sizes = [256, 512, 1024, 2048, 4096];
  const tasks: TaskRequest[] = [];
  let demandMb = 0;
  while (demandMb < 1.3 * 100 * 16_384) {
    const memoryMb = sizes[Math.floor(r() * sizes.length)];
    tasks.push({
      taskGuid: `p-${tasks.length}`,
      rootFs: "docker:///diego/busybox",
      placementTags: [],
      memoryMb,
      diskMb: memoryMb,
    });
    demandMb += memoryMb;
  }
  line("| how | memory used of total | containers used | tasks placed | failures |");
  line("|---|---|---|---|---|");
  const oneBatch = simulatedFleet(100, cellTemplate);
  const res = simulateAuction(oneBatch, tasks);
  const f1 = fleetFigures(oneBatch);
  line(
    `| one auction of ${tasks.length} | ${(f1.memoryUsed * 100).toFixed(1)} % | ${(f1.containersUsed * 100).toFixed(1)} % | ${f1.tasks} | ${res.result.failures.length} (${res.result.failures.filter((x) => x.permanent).length} permanent) |`,
  );
  const trickle = simulatedFleet(100, cellTemplate);
  let failures = 0;
  for (let i = 0; i < tasks.length; i += 20)
    failures += simulateAuction(trickle, tasks.slice(i, i + 20)).result.failures.length;
  const f2 = fleetFigures(trickle);
  line(
    `| auctions of 20 as they arrive | ${(f2.memoryUsed * 100).toFixed(1)} % | ${(f2.containersUsed * 100).toFixed(1)} % | ${f2.tasks} | ${failures} |`,
  );
  const ffd = firstFitDecreasing(
    tasks,
    simulatedFleet(100, cellTemplate).map((c) => c.state()),
  );
  line(
    `| raw baseline: first-fit decreasing | ${((ffd.memory / (100 * 16_384)) * 100).toFixed(1)} % | — | ${ffd.placed} | — |`,
  );
  line(
    "Diego's score spreads tasks (fewest tasks first) rather than packing; largest-first keeps big tasks from being starved.",
  );
  line();
}

/** One fleet of simulated cell servers registered with a real BBS, and an auctioneer placing on it. */
async function fleet(cellCount: number) {
  const bbs = await startBbs(
    { store: "memory", listenAddress: "127.0.0.1:0", statusAddress: "127.0.0.1:0", logLevel: "silent" },
    { logger },
  );
  const accepted = new Map<string, () => void>();
  const servers = new SimulatedCellServers({
    logger,
    onAccepted: (_cellId, tasks) => tasks.forEach((t) => accepted.get(t.taskGuid)?.()),
  });
  const t0 = performance.now();
  await servers.add(simulatedFleet(cellCount, bigCell));
  const registry = createClient(CellRegistryService, bbs.address);
  const presences = servers.presences();
  for (let i = 0; i < presences.length; i += 100)
    await Promise.all(
      presences.slice(i, i + 100).map((cell) => registry.heartbeat({ cell, ttlMs: BigInt(LIMITS.ttlMs) })),
    );
  registry.close();
  const startMs = performance.now() - t0;
  const auctioneer = await startAuctioneer(
    auctioneerConfig({
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      bbsAddress: bbs.address,
      lockRetryInterval: 50,
      logLevel: "silent",
    }),
    { logger },
  );
  while (!auctioneer.isActive()) await new Promise((r) => setTimeout(r, 10));
  // The BBS's side of RequestTaskAuctions: the bench asks the auctioneer directly, as the BBS does.
  const client = createClient(auctioneerv1.AuctioneerService, auctioneer.address);
  const placed = (guids: readonly string[]) =>
    Promise.all(guids.map((g) => new Promise<void>((resolve) => accepted.set(g, resolve))));
  const stateCalls = async () =>
    (await auctioneer.metrics.registry.getSingleMetric("AuctioneerCellStateRequests")!.get()).values[0]?.value ?? 0;
  return {
    startMs,
    servers,
    auctioneer,
    stateCalls,
    /** Requests the tasks in calls of 1,000 (like the BBS) and resolves when every one was accepted by a cell. */
    async auction(tasks: ReturnType<typeof mixedTasks>) {
      const done = placed(tasks.map((t) => t.taskGuid));
      const calls: Promise<unknown>[] = [];
      for (let i = 0; i < tasks.length; i += 1000)
        calls.push(
          client.requestTaskAuctions({
            tasks: tasks.slice(i, i + 1000).map((t) => ({
              taskGuid: t.taskGuid,
              rootFs: t.rootFs,
              memoryMb: t.memoryMb,
              diskMb: t.diskMb,
            })),
          }),
        );
      await Promise.all(calls);
      await done;
    },
    async stop() {
      client.close();
      await auctioneer.stop();
      await servers.stop();
      await bbs.stop();
    },
  };
}

async function singleTaskAuctions(cellCount: number, runs: number) {
  const f = await fleet(cellCount);
  const warm = mixedTasks(1, 9).map((t) => ({ ...t, taskGuid: "warm-up" }));
  await f.auction(warm); // the first auction fetches every cell (the cache starts empty)
  const before = await f.stateCalls();
  const latencies: number[] = [];
  for (let i = 0; i < runs; i++) {
    const task = { ...mixedTasks(1, i + 11)[0], taskGuid: `single-${i}` };
    const s = performance.now();
    await f.auction([task]);
    latencies.push(performance.now() - s);
  }
  const calls = (await f.stateCalls()) - before;
  await f.stop();
  return { p50: median(latencies), p90: percentile(latencies, 0.9), stateCalls: calls, startMs: f.startMs };
}

async function burst(cellCount: number, count: number) {
  const f = await fleet(cellCount);
  await f.auction([{ ...mixedTasks(1, 9)[0], taskGuid: "warm-up" }]);
  await new Promise((r) => setTimeout(r, 200)); // the warm-up round reports after its Perform
  const rounds: number[] = [];
  f.auctioneer.runner.onRound((r) => rounds.push(r.tasks));
  const tasks = mixedTasks(count, 3).map((t) => ({ ...t, taskGuid: `burst-${t.taskGuid}` }));
  const b0 = performance.now();
  await f.auction(tasks);
  const seconds = (performance.now() - b0) / 1000;
  await new Promise((r) => setTimeout(r, 200)); // the last round reports after its Performs
  const perCell = f.servers.cells.map((c) => c.taskGuids.length);
  await f.stop();
  return { seconds, rounds, min: Math.min(...perCell), max: Math.max(...perCell) };
}

async function endToEnd() {
  const big = quick ? 200 : 1000;
  const runs = quick ? 30 : 100;
  line(`## 4. End-to-end auctions through gRPC: 10 and ${big} simulated cells`);
  line("Setup: the real BBS (memory store; ListCells, RejectTask, LockService) and the auctioneer started with");
  line(`startAuctioneer(); the cells are a load generator: ${big} CellRepService gRPC servers (one per simulated`);
  line("cell, each on its own 127.0.0.1 port) whose State and Perform keep a simulated cell's books (no containers),");
  line("registered with the BBS by Heartbeat. The bench sends RequestTaskAuctions to the auctioneer as the BBS does");
  line("(calls of 1,000); a task counts when its cell accepted it at Perform. All in this one process on a 2-core");
  line("machine shared with other work, so figures vary from run to run.");
  const small = await singleTaskAuctions(10, runs);
  const large = await singleTaskAuctions(big, runs);
  const count = quick ? 2_000 : 10_000;
  const b = await burst(big, count);
  line("| figure | value |");
  line("|---|---|");
  line(
    `| single-task auction, request → accepted, 10 cells | p50 ${ms(small.p50)}, p90 ${ms(small.p90)} (${runs} one after another) |`,
  );
  line(`| single-task auction, request → accepted, ${big} cells | p50 ${ms(large.p50)}, p90 ${ms(large.p90)} |`);
  line(`| ratio of the p50s (target ≤ 1.5, and < 20 ms at ${big}) | ${(large.p50 / small.p50).toFixed(2)} |`);
  line(
    `| cell State calls during those ${runs} auctions (cache warm) | ${small.stateCalls} at 10 cells, ${large.stateCalls} at ${big} (asking every cell: ${runs * 10} and ${runs * big}) |`,
  );
  line(
    `| burst of ${count.toLocaleString("en")} tasks over ${big} cells | all accepted in ${(b.seconds * 1000).toFixed(0)} ms = ${(count / b.seconds).toFixed(0)} tasks/s over ${b.rounds.length} auctions (tasks per auction: ${b.rounds.join(", ")}) |`,
  );
  line(`| spread after the burst (tasks per cell) | min ${b.min}, max ${b.max} |`);
  line(`| starting and registering the ${big} cell servers | ${ms(large.startMs)} |`);
  line();
  return { small, large, burstPerSecond: count / b.seconds };
}

line(`# Auction benchmark (${new Date().toISOString()}, node ${process.version}${quick ? ", --quick" : ""})`);
line();
const schedule10k1k = parts.has("schedule") ? scheduleSpeed() : NaN;
if (parts.has("spread")) spread();
if (parts.has("packing")) packing();
const e2e = parts.has("e2e") ? await endToEnd() : undefined;
const figure = (x: number | undefined, digits: number) =>
  x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits));
line(
  JSON.stringify({
    bench: "auction",
    auction_p50_ms_10_cells: figure(e2e?.small.p50, 2),
    auction_p50_ms_1000_cells: figure(e2e?.large.p50, 2),
    burst_tasks_per_s_1000_cells: figure(e2e?.burstPerSecond, 0),
    schedule_10k_1k_ms: figure(schedule10k1k, 2),
  }),
);
process.exit(0);

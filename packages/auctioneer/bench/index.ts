/**
 * pnpm bench:auction — placement speed, fairness and packing of the pure scheduler, and the end-to-end
 * rate of auctions through gRPC with 1,000 simulated cells, each with figures against a raw baseline
 * measured in the same run. Everything runs in this one process on this machine.
 */
import { createClient } from "@diego/kit";
import { compatibility, demand, fits } from "@diego/models";
import {
  orderBatch,
  schedule,
  score,
  cellLoad,
  simulatedFleet,
  simulateAuction,
  fleetFigures,
  type CellSnapshot,
  type TaskRequest,
} from "@diego/auction";
import { cellv1 } from "@diego/proto";
import { pino } from "pino";
import { auctioneerConfig, startAuctioneer } from "../src/index.js";
import { FakeBbs, SimulatedCellServers } from "../src/sim/index.js";

const logger = pino({ level: "silent" });
const quick = process.argv.includes("--quick");
const line = (s = "") => process.stdout.write(`${s}\n`);
const ms = (x: number) => `${x.toFixed(1)} ms`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

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

function scheduleSpeed() {
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
    line(
      `| ${cellCount} | ${ms(median(ours))} (${ms(Math.min(...ours))}) | ${ms(median(base))} | ${(median(base) / median(ours)).toFixed(1)}× | ${placed} |`,
    );
  }
  line("Target: under 100 ms for 1,000 cells.");
  line();
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

async function endToEnd() {
  const cellCount = quick ? 200 : 1000;
  line(`## 4. End-to-end auctions through gRPC with ${cellCount} simulated cells`);
  line(
    `Setup: ${cellCount} CellRepService gRPC servers (one per simulated cell, each on its own 127.0.0.1 port, not one`,
  );
  line("server multiplexing ids), a fake BBS (ListCells, RejectTask, LockService, and sending RequestTaskAuctions in");
  line("batches of 1,000 like the BBS), and the auctioneer started with startAuctioneer(): all in this one process,");
  line("sharing the machine's 2 cores. A task counts when its cell accepted it at Perform.");
  const bbs = new FakeBbs({ logger });
  await bbs.start();
  const servers = new SimulatedCellServers({
    logger,
    onAccepted: (cellId, tasks) => tasks.forEach((t) => bbs.claim(t.taskGuid, cellId)),
  });
  const t0 = performance.now();
  await servers.add(simulatedFleet(cellCount, bigCell));
  bbs.cells = servers.presences();
  line(`(starting the ${cellCount} cell servers took ${ms(performance.now() - t0)})`);

  // Raw baseline: one State call to every cell, all in flight at once, with no auction around it.
  const client = servers.presences().map((p) => createClient(cellv1.CellRepService, p.address!));
  await Promise.all(client.map((c) => c.state({})));
  const raw: number[] = [];
  for (let i = 0; i < 5; i++) {
    const s = performance.now();
    await Promise.all(client.map((c) => c.state({})));
    raw.push(performance.now() - s);
  }
  client.forEach((c) => c.close());

  const auctioneer = await startAuctioneer(
    auctioneerConfig({
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      bbsAddress: bbs.address,
      lockRetryInterval: 50,
      retryInterval: 100,
    }),
    { logger },
  );
  while (!auctioneer.isActive()) await new Promise((r) => setTimeout(r, 10));
  const rounds: { tasks: number; placed: number; ms: number }[] = [];
  let last = performance.now();
  auctioneer.runner.onRound((r) => {
    const now = performance.now();
    rounds.push({ tasks: r.tasks, placed: r.placed, ms: now - last });
    last = now;
  });
  const until = async (check: () => boolean) => {
    while (!check()) await new Promise((r) => setTimeout(r, 2));
  };

  // (a) sequential single-task auctions: latency from request to the cell's acceptance.
  const singles = quick ? 20 : 100;
  const latencies: number[] = [];
  const s0 = performance.now();
  for (let i = 0; i < singles; i++) {
    const guid = `single-${i}`;
    const s = performance.now();
    await bbs.desire([{ taskGuid: guid, rootFs: "docker:///diego/busybox", memoryMb: 128, diskMb: 128 }]);
    await until(() => bbs.tasks.get(guid)!.state === "CLAIMED");
    latencies.push(performance.now() - s);
  }
  const singleSeconds = (performance.now() - s0) / 1000;

  // (b) a burst: 10,000 tasks requested at once (in calls of 1,000).
  await new Promise((r) => setTimeout(r, 300)); // let the last single auction report
  rounds.length = 0;
  const burst = quick ? 2_000 : 10_000;
  const tasks = mixedTasks(burst, 3).map((t) => ({ ...t, placementTags: [], taskGuid: `burst-${t.taskGuid}` }));
  const b0 = performance.now();
  last = b0;
  await bbs.desire(tasks);
  await until(() => bbs.count("CLAIMED") === singles + burst);
  const burstSeconds = (performance.now() - b0) / 1000;
  await until(() => rounds.reduce((a, r) => a + r.tasks, 0) >= burst); // the last auction reports after its Performs
  const fetchMetric = await auctioneer.metrics.registry.getSingleMetric("AuctioneerFetchStatesDuration")!.get();
  const named = (name: string) =>
    fetchMetric.values.find((v) => (v as { metricName?: string }).metricName === name)?.value;
  const sum = named("AuctioneerFetchStatesDuration_sum") ?? 0;
  const count = named("AuctioneerFetchStatesDuration_count") ?? 1;

  line("| figure | value |");
  line("|---|---|");
  line(`| raw baseline: State from all ${cellCount} cells at once, no auction | ${ms(median(raw))} median of 5 |`);
  line(`| fetch of all cell states inside auctions (mean) | ${ms((sum / count) * 1000)} |`);
  line(
    `| single-task auctions one after another | ${(singles / singleSeconds).toFixed(1)} auctions/s, request→accepted median ${ms(median(latencies))} |`,
  );
  line(
    `| burst of ${burst.toLocaleString("en")} tasks requested at once | all accepted in ${(burstSeconds * 1000).toFixed(0)} ms = ${(burst / burstSeconds).toFixed(0)} tasks/s over ${rounds.length} auctions (tasks per auction: ${rounds.map((r) => r.tasks).join(", ")}) |`,
  );
  const perCell = servers.cells.map((c) => c.taskGuids.length);
  line(`| spread after the burst (tasks per cell) | min ${Math.min(...perCell)}, max ${Math.max(...perCell)} |`);
  line();

  await auctioneer.stop();
  await servers.stop();
  await bbs.stop();
}

line(`# Auction benchmark (${new Date().toISOString()}, node ${process.version}${quick ? ", --quick" : ""})`);
line();
scheduleSpeed();
spread();
packing();
await endToEnd();
process.exit(0);

// pnpm bench:bbs — the BBS's throughput and read latency, beside the raw etcd compare-and-swap rate
// and the raw grpc-js call rate measured in the same run on the same machine (docs/performance.md).
// Ends with one JSON line of the headline figures.
//
//   BENCH_QUICK=1               a short run: 3 s per rate, 20,000 stored tasks, no 1-client runs
//   BENCH_SECONDS=10            length of each measured run
//   BENCH_TASKS=250000          tasks stored for the read benchmark
//   BENCH_WINDOW=32             lifecycles each client keeps going in the batched run
//   BENCH_CELL_FLUSH_MS=200     how often a simulated cell sends its LifecycleBatch
//   BENCH_CLIENT_FLUSH_MS=20    how often a client sends its TaskBatch
//   BENCH_PARTS=cas,store,echo,unary,batched,reads   what to run (default all)
//   DIEGO_BENCH_ETCD=http://…   use this etcd instead of starting one
//   BENCH_BBS_ARGS=…            BBS flags for the lifecycle runs (e.g. --write-concurrency 8)
//   BENCH_BBS_NODE_ARGS=…       node flags for the BBS process (e.g. --cpu-prof --cpu-prof-dir=DIR)
import type { ChildProcess } from "node:child_process";
import { createLogger } from "@diego/kit";
import { EtcdServer } from "@diego/testing";
import { Etcd3 } from "etcd3";
import { cpuMs, rssMib, spawnBbs, stopBbs, txnTotals } from "./bbs-process.js";
import { batchedLifecycles, dispatchingAuctioneer, unaryLifecycles, type Window } from "./lifecycles.js";
import { rawGrpcLatencies, rawGrpcRate } from "./raw-grpc.js";
import { DOMAIN_SIZE, readLatenciesApart, seed, summary } from "./reads.js";
import { rawCas, storeLifecycles } from "./store-rates.js";

const env = process.env;
const QUICK = env.BENCH_QUICK === "1";
const SECONDS = Number(env.BENCH_SECONDS ?? (QUICK ? 3 : 10));
const STORED = Number(env.BENCH_TASKS ?? (QUICK ? 20_000 : 250_000));
const WINDOW = Number(env.BENCH_WINDOW ?? 32);
const CELL_FLUSH_MS = Number(env.BENCH_CELL_FLUSH_MS ?? 200);
const CLIENT_FLUSH_MS = Number(env.BENCH_CLIENT_FLUSH_MS ?? 20);
const PARTS = new Set((env.BENCH_PARTS ?? "cas,store,echo,unary,batched,reads").split(","));
const CLIENTS = QUICK ? [32] : [1, 32];
const logger = createLogger("bench", "warn");

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const round = (n: number | undefined, digits = 2) =>
  n === undefined || !Number.isFinite(n) ? null : Math.round(n * 10 ** digits) / 10 ** digits;

async function main() {
  const own = env.DIEGO_BENCH_ETCD ? undefined : await EtcdServer.start();
  const etcdUrl = env.DIEGO_BENCH_ETCD ?? own!.url;
  const etcd = new Etcd3({ hosts: etcdUrl, grpcOptions: { "grpc.max_receive_message_length": 64 * 1024 * 1024 } });
  const children: ChildProcess[] = [];
  const auctioneer = await dispatchingAuctioneer(logger);
  const out: Record<string, number | null> = {};
  try {
    console.log(
      `diego BBS benchmark — etcd ${etcdUrl}${own ? " (started by the benchmark)" : ""}, ${SECONDS} s per run` +
        ` (the machine is shared: every figure is of this run only)\n`,
    );

    const cas: Record<number, number> = {};
    if (PARTS.has("cas")) {
      console.log("raw etcd compare-and-swap (one key per txn: compare mod_revision, put):");
      for (const n of CLIENTS) {
        cas[n] = await rawCas(etcd, n, SECONDS);
        console.log(`  ${String(n).padEnd(2)} client${n > 1 ? "s" : " "}  ${fmt(cas[n])} txn/s`);
      }
      console.log();
    }

    if (PARTS.has("store")) {
      console.log(
        "lifecycles on the etcd task store itself (no gRPC; 6 CAS writes each, grouped by the write coalescer):",
      );
      for (const n of CLIENTS) {
        const r = await storeLifecycles(etcdUrl, n, SECONDS);
        console.log(
          `  ${String(n).padEnd(2)} client${n > 1 ? "s" : " "}  ${fmt(r.rate)} lifecycles/s (${fmt(r.tasksPerTxn, 1)} tasks per txn)`,
        );
      }
      console.log();
    }

    const echo: Record<number, number> = {};
    if (PARTS.has("echo")) {
      console.log("raw gRPC (grpc-js echo of 16 bytes, server in its own process, no work):");
      for (const n of CLIENTS) {
        echo[n] = await rawGrpcRate(n, SECONDS);
        console.log(
          `  ${String(n).padEnd(2)} client${n > 1 ? "s" : " "}  ${fmt(echo[n])} calls/s = at most ${fmt(echo[n] / 6)} lifecycles/s of 6 calls`,
        );
      }
      out.raw_grpc_calls_per_s_32 = round(echo[32], 0);
      console.log();
    }

    if (PARTS.has("unary") || PARTS.has("batched")) {
      const prefix = `/bench-${Date.now()}`;
      const bbs = await spawnBbs(
        etcdUrl,
        prefix,
        auctioneer.address,
        (env.BENCH_BBS_ARGS ?? "").split(" ").filter(Boolean),
      );
      children.push(bbs.child);
      const pid = bbs.child.pid!;
      const measured = () => {
        let cpu0 = 0;
        let cpu = 0;
        const w: Window = {
          seconds: SECONDS,
          warmupMs: 2_000,
          onStart: () => (cpu0 = cpuMs(pid)),
          onEnd: () => (cpu = cpuMs(pid) - cpu0),
        };
        return { w, cpu: () => cpu };
      };
      if (PARTS.has("unary")) {
        console.log(
          "full lifecycles through gRPC, one RPC per transition (desire → start → running → complete → resolving → delete):",
        );
        for (const n of CLIENTS) {
          const m = measured();
          const r = await unaryLifecycles(bbs.address, n, m.w);
          const perLife = m.cpu() / Math.max(1, r.rate * SECONDS);
          console.log(
            `  ${String(n).padEnd(2)} client${n > 1 ? "s" : " "}  ${fmt(r.rate)} lifecycles/s = ${fmt(r.rate * 6)} calls/s;` +
              ` BBS CPU ${fmt(perLife, 2)} ms per lifecycle` +
              (echo[n] ? `; ${fmt((100 * r.rate * 6) / echo[n])} % of the raw gRPC call rate` : ""),
          );
          if (n === 32) out.unary_lifecycles_per_s_32 = round(r.rate, 0);
        }
        console.log();
      }
      if (PARTS.has("batched")) {
        console.log(
          `full lifecycles through gRPC in batches: 32 clients (TaskBatch every ${CLIENT_FLUSH_MS} ms, ${WINDOW} lifecycles` +
            ` each at a time), 8 simulated cells (LifecycleBatch every ${CELL_FLUSH_MS} ms), tasks reaching the cells through the auctioneer:`,
        );
        const m = measured();
        const txns0 = await txnTotals(bbs.statusAddress);
        const r = await batchedLifecycles(
          bbs.address,
          auctioneer,
          { clients: 32, window: WINDOW, cells: 8, cellFlushMs: CELL_FLUSH_MS, clientFlushMs: CLIENT_FLUSH_MS },
          m.w,
        );
        const perLife = m.cpu() / Math.max(1, r.rate * SECONDS);
        const txns1 = await txnTotals(bbs.statusAddress);
        const txns = txns1.txns - txns0.txns;
        console.log(
          `  etcd write transactions: ${fmt(txns)}, ${fmt((txns1.tasks - txns0.tasks) / Math.max(1, txns), 1)} task writes each, ${fmt((1000 * (txns1.seconds - txns0.seconds)) / Math.max(1, txns))} ms each on average (warm-up and drain included)`,
        );
        console.log(
          `  32 clients  ${fmt(r.rate)} lifecycles/s = ${fmt(r.rate * 6)} transitions/s in ${fmt(r.callsPerLifecycle, 3)} gRPC calls per lifecycle;` +
            ` BBS CPU ${fmt(perLife, 2)} ms per lifecycle (${fmt(m.cpu() / 10 / SECONDS)} % of one core)` +
            (echo[32]
              ? `; ${fmt(r.rate / (echo[32] / 6), 1)} × the raw gRPC ceiling of ${fmt(echo[32] / 6)} lifecycles/s`
              : ""),
        );
        out.lifecycles_per_s_32 = round(r.rate, 0);
        out.bbs_cpu_ms_per_lifecycle = round(perLife, 3);
        console.log();
      }
      console.log(`  tasks sent to the auctioneer: ${fmt(auctioneer.received())}`);
      console.log(`  BBS RSS after the lifecycle runs: ${fmt(rssMib(pid))} MiB\n`);
      await stopBbs(bbs.child);
      await etcd.delete().prefix(prefix);
    }

    if (PARTS.has("reads")) {
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
        `BBS started and loaded them in ${fmt((Date.now() - started) / 1000, 1)} s; RSS ${fmt(rssMib(reader.child.pid!))} MiB`,
      );
      const reads = await readLatenciesApart(reader.address, STORED);
      const rss = rssMib(reader.child.pid!);
      const echo = summary(await rawGrpcLatencies(5_000, 300));
      console.log(
        `  GetTask    p50 ${fmt(reads.get.p50, 2)} ms  p99 ${fmt(reads.get.p99, 2)} ms  (${fmt(reads.get.n)} calls, target p99 < 5 ms)`,
      );
      console.log(
        `             raw gRPC echo of 300 bytes, same run: p50 ${fmt(echo.p50, 2)} ms  p99 ${fmt(echo.p99, 2)} ms`,
      );
      console.log(
        `  ListTasks  p50 ${fmt(reads.list.p50, 2)} ms  p99 ${fmt(reads.list.p99, 2)} ms  (one ${fmt(DOMAIN_SIZE)}-task domain, ${fmt(reads.list.n)} calls, target < 50 ms)`,
      );
      console.log(
        `             of which the client decoding the ${fmt(reads.listBytes / 1024)} KiB response alone, same run: p50 ${fmt(reads.decode.p50, 2)} ms  p99 ${fmt(reads.decode.p99, 2)} ms`,
      );
      out.raw_echo_p99_ms = round(echo.p99);
      out.list_decode_p99_ms = round(reads.decode.p99);
      console.log(`  BBS RSS with ${fmt(STORED)} tasks: ${fmt(rss)} MiB (target < 1024 MiB)`);
      out.get_p99_ms_250k = round(reads.get.p99);
      out.list_p99_ms_250k = round(reads.list.p99);
      out.rss_mib_250k = round(rss, 0);
      await stopBbs(reader.child);
      await etcd.delete().prefix(readPrefix);
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    await auctioneer.stop();
    etcd.close();
    await own?.remove();
  }
  const keys = [
    "lifecycles_per_s_32",
    "raw_grpc_calls_per_s_32",
    "bbs_cpu_ms_per_lifecycle",
    "get_p99_ms_250k",
    "list_p99_ms_250k",
    "rss_mib_250k",
  ];
  const line: Record<string, unknown> = { bench: "bbs" };
  for (const k of keys) line[k] = out[k] ?? null;
  line.unary_lifecycles_per_s_32 = out.unary_lifecycles_per_s_32 ?? null;
  line.raw_echo_p99_ms = out.raw_echo_p99_ms ?? null;
  line.list_decode_p99_ms = out.list_decode_p99_ms ?? null;
  line.stored_tasks = PARTS.has("reads") ? STORED : null;
  line.seconds = SECONDS;
  console.log(JSON.stringify(line));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

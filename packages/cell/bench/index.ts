// pnpm bench:cell — the cell's latency and throughput against raw dockerode in the same run.
//
// Latency: DesireTask → process running (the task's RUNNING transition) and → COMPLETED for a trivial
// task on an idle cell, p50/p99, beside raw create+start+wait+remove of the same image.
// Throughput: tasks/s with work queued at concurrency C, beside raw Docker at the same concurrency.
//
// The BBS here is the in-memory fake of the cell's tests (test/support/fake-bbs.ts), which also
// places each task on the cell like the auctioneer; re-run against the real BBS once it is wired.
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, createLogger } from "@diego/kit";
import { TaskService, TaskState } from "@diego/proto";
import Docker from "dockerode";
import { cellConfig, startCell } from "../src/index.js";
import { FakeBbs } from "../test/support/fake-bbs.js";

const IMAGE = "diego/busybox:latest";
const LATENCY_RUNS = Number(process.env.BENCH_RUNS ?? 40);
const THROUGHPUT_TASKS = Number(process.env.BENCH_TASKS ?? 48);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

const fmt = (ms: number) => `${ms.toFixed(1)} ms`;

async function pool(total: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await fn(next++);
    }),
  );
  return (performance.now() - started) / 1000;
}

async function main() {
  const docker = new Docker({ socketPath: "/var/run/docker.sock" });
  const bbs = await FakeBbs.start();
  const cellId = `bench-cell-${process.pid}`;
  const workDir = join(tmpdir(), `diego-${cellId}`);
  const stop = await startCell(
    cellConfig({ cellId, listenAddress: "127.0.0.1:0", statusAddress: "127.0.0.1:0", bbsAddress: bbs.address, workDir, memoryMb: 65536, diskMb: 65536 }),
    { logger: createLogger("cell", "warn") },
  );
  await bbs.waitForCell(cellId);
  const client = createClient(TaskService, bbs.address);
  let n = 0;
  const task = () => ({
    taskGuid: `bench-${process.pid}-${n++}`,
    domain: "bench",
    rootFs: `docker:///diego/busybox`,
    memoryMb: 32,
    action: { action: { case: "run" as const, value: { path: "/bin/true" } } },
  });

  async function oneTask(): Promise<{ running: number; completed: number }> {
    const t = task();
    const t0 = performance.now();
    await client.desireTask(t);
    const done = await bbs.completed(t.taskGuid);
    if (done.failed) throw new Error(`bench task failed: ${done.failureReason}`);
    const running = bbs.transitions.find((x) => x.taskGuid === t.taskGuid && x.state === TaskState.RUNNING)!.at - t0;
    const completed = bbs.transitions.find((x) => x.taskGuid === t.taskGuid && x.state === TaskState.COMPLETED)!.at - t0;
    bbs.apply("resolve", "client", t.taskGuid, {});
    bbs.apply("delete", "client", t.taskGuid, {});
    return { running, completed };
  }

  const rawUntilExit: number[] = [];
  async function rawOne(): Promise<number> {
    const t0 = performance.now();
    const c = await docker.createContainer({ Image: IMAGE, Cmd: ["/bin/true"], HostConfig: { Memory: 32 * 1024 * 1024, MemorySwap: 32 * 1024 * 1024 } });
    await c.start();
    await c.wait();
    rawUntilExit.push(performance.now() - t0);
    await c.remove({ force: true });
    return performance.now() - t0;
  }

  // Warm up both paths.
  for (let i = 0; i < 3; i++) {
    await oneTask();
    await rawOne();
  }

  const cellRunning: number[] = [];
  const cellCompleted: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < LATENCY_RUNS; i++) {
    // Interleave so both see the same engine conditions.
    const r = await oneTask();
    cellRunning.push(r.running);
    cellCompleted.push(r.completed);
    raw.push(await rawOne());
    await new Promise((res) => setTimeout(res, 50)); // let the cell remove the container: an idle cell
  }

  const rawExit = rawUntilExit.slice(-LATENCY_RUNS);
  const rawSeconds = await pool(THROUGHPUT_TASKS, CONCURRENCY, async () => void (await rawOne()));
  const cellSeconds = await pool(THROUGHPUT_TASKS, CONCURRENCY, async () => void (await oneTask()));

  const p50 = (xs: number[]) => percentile(xs, 50);
  const p99 = (xs: number[]) => percentile(xs, 99);
  const lines = [
    `cell benchmark (fake in-memory BBS; ${LATENCY_RUNS} sequential trivial tasks /bin/true on ${IMAGE}, idle cell)`,
    `  DesireTask → RUNNING     p50 ${fmt(p50(cellRunning))}  p99 ${fmt(p99(cellRunning))}`,
    `  DesireTask → COMPLETED   p50 ${fmt(p50(cellCompleted))}  p99 ${fmt(p99(cellCompleted))}`,
    `  raw dockerode create+start+wait+remove  p50 ${fmt(p50(raw))}  p99 ${fmt(p99(raw))}`,
    `  raw without the remove (create+start+wait)  p50 ${fmt(p50(rawExit))}  p99 ${fmt(p99(rawExit))}  (the cell removes after CompleteTask, off the task's path)`,
    `  ratio COMPLETED/raw: p50 ${(p50(cellCompleted) / p50(raw)).toFixed(2)}x (target <= 1.25x), p99 ${(p99(cellCompleted) / p99(raw)).toFixed(2)}x; p99 under 1 s: ${p99(cellCompleted) < 1000 ? "yes" : "NO"}`,
    `throughput (${THROUGHPUT_TASKS} tasks, ${CONCURRENCY} in flight)`,
    `  cell ${(THROUGHPUT_TASKS / cellSeconds).toFixed(2)} tasks/s   raw ${(THROUGHPUT_TASKS / rawSeconds).toFixed(2)} containers/s   ratio ${((rawSeconds / cellSeconds) * 100).toFixed(0)}% (target >= 90%)`,
  ];
  console.log(lines.join("\n"));

  client.close();
  await stop();
  await bbs.stop();
  await rm(workDir, { recursive: true, force: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

// pnpm bench:outside — a running cluster (scripts/dev) as an outside program sees it, beside
// `docker run --rm` of the same work in the same run.
//
// The task is the README's kind of task: an env variable, a line of output, a result file, 64 MB of
// memory, on docker:///diego/busybox. Latency: DesireTask sent → COMPLETED seen on WatchTasks, on the
// client's own clock, one task at a time with a pause between (so each starts on idle cells),
// interleaved with `docker run --rm --memory 64m` of the same script. Throughput: tasks/s with work
// queued at concurrency C (desire, wait for COMPLETED, resolve, delete), beside `docker run --rm` at
// the same concurrency, in rounds of each in turn, each timed in steady state. Ends with one JSON line.
//
// Settings: DIEGO_BBS_ADDR (default scripts/dev's 127.0.0.1:8889), BENCH_RUNS (20), BENCH_TASKS (32
// per round), BENCH_ROUNDS (2), BENCH_CONCURRENCY (4), BENCH_PAUSE_MS (1500).
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { TaskState, type Task } from "@diego/proto";
import { percentile, steadyRate } from "@diego/testing";
import { DiegoClient, isResync } from "../src/index.js";

const run = promisify(execFile);
const ADDRESS = process.env.DIEGO_BBS_ADDR ?? "127.0.0.1:8889";
const RUNS = Number(process.env.BENCH_RUNS ?? 20);
const TASKS = Number(process.env.BENCH_TASKS ?? 32);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const PAUSE_MS = Number(process.env.BENCH_PAUSE_MS ?? 1500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const DOMAIN = "bench-outside";
const SCRIPT = "echo $GREETING; printf 42 > /tmp/result";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main() {
  const client = new DiegoClient({ address: ADDRESS });
  const done = new Map<string, (t: Task) => void>();
  const watching = new AbortController();
  const watch = (async () => {
    for await (const item of client.watch({ domain: DOMAIN }, { signal: watching.signal })) {
      if (isResync(item)) {
        for (const t of item.tasks) if (t.state === TaskState.COMPLETED) done.get(t.taskGuid)?.(t);
        continue;
      }
      if (item.event.case === "changed" && item.event.value.after?.state === TaskState.COMPLETED)
        done.get(item.event.value.after.taskGuid)?.(item.event.value.after);
    }
  })().catch(() => undefined);
  await sleep(300);

  let n = 0;
  const prefix = `outside-${process.pid}`;
  async function oneTask(): Promise<number> {
    const taskGuid = `${prefix}-${n++}`;
    const completed = new Promise<Task>((resolve) => done.set(taskGuid, resolve));
    const t0 = performance.now();
    await client.desire({
      taskGuid,
      domain: DOMAIN,
      rootFs: "docker:///diego/busybox",
      env: [{ name: "GREETING", value: "hello" }],
      memoryMb: 64,
      diskMb: 64,
      action: { action: { case: "run", value: { path: "/bin/sh", args: ["-c", SCRIPT] } } },
      resultFile: "/tmp/result",
    });
    const t = await completed;
    const ms = performance.now() - t0;
    done.delete(taskGuid);
    if (t.failed || t.result !== "42") throw new Error(`task ${taskGuid} failed: ${t.failureReason || t.result}`);
    await client.resolve(taskGuid);
    await client.delete(taskGuid);
    return ms;
  }
  async function dockerRun(): Promise<number> {
    const t0 = performance.now();
    const { stdout } = await run("docker", [
      "run",
      "--rm",
      "--memory",
      "64m",
      "-e",
      "GREETING=hello",
      "diego/busybox",
      "sh",
      "-c",
      `${SCRIPT}; cat /tmp/result`,
    ]);
    if (!stdout.endsWith("42")) throw new Error(`docker run printed ${JSON.stringify(stdout)}`);
    return performance.now() - t0;
  }

  // Warm up both: the cells learn the task's shape.
  for (let i = 0; i < 3; i++) {
    await oneTask();
    await dockerRun();
  }
  await sleep(PAUSE_MS);
  const cell: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    cell.push(await oneTask());
    await sleep(PAUSE_MS);
    raw.push(await dockerRun());
    await sleep(PAUSE_MS);
  }
  // Rounds of each in turn, each timed in steady state (steadyRate).
  const rates = { raw: [] as number[], cell: [] as number[] };
  for (let r = 0; r < ROUNDS; r++)
    for (const [side, fn] of [
      ["raw", dockerRun],
      ["cell", oneTask],
    ] as const) {
      const { seconds, counted } = await steadyRate(TASKS, CONCURRENCY, fn);
      rates[side].push(counted / seconds);
      await sleep(PAUSE_MS);
    }
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const [rawRate, cellRate] = [mean(rates.raw), mean(rates.cell)];

  const p50 = (xs: number[]) => percentile(xs, 50);
  const p99 = (xs: number[]) => percentile(xs, 99);
  const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
  console.log(
    [
      `outside client against ${ADDRESS} (${RUNS} tasks one at a time, then ${TASKS} at ${CONCURRENCY} in flight; env, output, result file)`,
      `  DesireTask → COMPLETED seen on WatchTasks  p50 ${p50(cell).toFixed(1)} ms  p99 ${p99(cell).toFixed(1)} ms`,
      `  docker run --rm of the same script        p50 ${p50(raw).toFixed(1)} ms  p99 ${p99(raw).toFixed(1)} ms`,
      `  ratio p50 ${(p50(cell) / p50(raw)).toFixed(2)}x (target <= 0.4x)`,
      `throughput (${ROUNDS} rounds of each, timed from the ${CONCURRENCY}th completion): cluster ${cellRate.toFixed(2)} tasks/s, docker run --rm ${rawRate.toFixed(2)}/s, ratio ${((cellRate / rawRate) * 100).toFixed(0)}% (target >= 95%); by round ${rates.cell.map((c, i) => (c / rates.raw[i]!).toFixed(2)).join(", ")}`,
    ].join("\n"),
  );
  console.log(
    JSON.stringify({
      bench: "outside",
      completed_p50_ms: round(p50(cell), 1),
      docker_run_p50_ms: round(p50(raw), 1),
      latency_ratio_p50: round(p50(cell) / p50(raw)),
      completed_p99_ms: round(p99(cell), 1),
      throughput_ratio: round(cellRate / rawRate),
      concurrency: CONCURRENCY,
    }),
  );
  watching.abort();
  await watch;
  client.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

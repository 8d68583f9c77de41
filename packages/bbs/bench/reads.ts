// Reads with many tasks stored: GetTask and ListTasks latency through gRPC, and the BBS's RSS.
import { execFile } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@diego/kit";
import { ListTasksResponseSchema, TaskSchema, TaskService, TaskState, type Task } from "@diego/proto";
import type { Etcd3 } from "etcd3";
import { Keys } from "../src/keys.js";
import { encodeTask } from "../src/store/task-entry.js";

export const DOMAIN_SIZE = 1_000;

/** Writes `count` COMPLETED tasks straight into etcd under the BBS's key layout, 128 per txn; seconds taken. */
export async function seed(etcd: Etcd3, prefix: string, count: number): Promise<number> {
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

export interface Latencies {
  n: number;
  p50: number;
  p99: number;
}

type ReadFigures = Awaited<ReturnType<typeof readLatencies>>;

/** readLatencies in a client process of its own (read-client.ts). */
export function readLatenciesApart(address: string, stored: number): Promise<ReadFigures> {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
  return new Promise((done, fail) =>
    execFile(
      process.execPath,
      ["--import", "tsx", "packages/bbs/bench/read-client.ts", address, String(stored)],
      { cwd: root, env: { ...process.env, NODE_OPTIONS: "" }, maxBuffer: 1024 * 1024 },
      (err, stdout) => {
        if (err) return fail(err);
        try {
          done(JSON.parse(stdout.trim().split("\n").pop()!) as ReadFigures);
        } catch (e) {
          fail(e as Error);
        }
      },
    ),
  );
}

/** GetTask of random stored tasks and ListTasks of random whole domains, one call at a time. */
export async function readLatencies(
  address: string,
  stored: number,
): Promise<{ get: Latencies; list: Latencies; decode: Latencies; listBytes: number }> {
  const tasks = createClient(TaskService, address);
  const time = async (fn: () => Promise<unknown>) => {
    const t0 = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  for (let i = 0; i < 500; i++) await tasks.getTask({ taskGuid: `stored-${i % stored}` });
  const get: number[] = [];
  for (let i = 0; i < 5_000; i++) {
    const guid = `stored-${Math.floor(Math.random() * stored)}`;
    get.push(await time(() => tasks.getTask({ taskGuid: guid })));
  }
  const sample = await tasks.listTasks({ domain: "domain-0", pageSize: DOMAIN_SIZE });
  const sampleWire = toBinary(ListTasksResponseSchema, sample);
  const domains = Math.max(1, Math.floor(stored / DOMAIN_SIZE));
  const list: number[] = [];
  for (let i = 0; i < 10; i++) await tasks.listTasks({ domain: "domain-0" });
  for (let i = 0; i < 200; i++) {
    const domain = `domain-${Math.floor(Math.random() * domains)}`;
    list.push(
      await time(async () => {
        let count = 0;
        let pageToken = "";
        do {
          const res = await tasks.listTasks({ domain, pageSize: DOMAIN_SIZE, pageToken });
          count += res.tasks.length;
          pageToken = res.nextPageToken;
        } while (pageToken);
        if (count !== DOMAIN_SIZE) throw new Error(`ListTasks(${domain}) returned ${count} tasks`);
      }),
    );
  }
  // The client's own share of a ListTasks call: decoding a 1,000-task response, no BBS and no network.
  const decode: number[] = [];
  for (let i = 0; i < 200; i++) decode.push(await time(async () => fromBinary(ListTasksResponseSchema, sampleWire)));
  tasks.close();
  return { get: summary(get), list: summary(list), decode: summary(decode), listBytes: sampleWire.length };
}

export { summary };

function summary(xs: number[]): Latencies {
  const sorted = [...xs].sort((a, b) => a - b);
  const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
  return { n: xs.length, p50: pct(50), p99: pct(99) };
}

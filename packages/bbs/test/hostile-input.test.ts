import { readFileSync } from "node:fs";
import { create, fromJson, toBinary, type JsonValue } from "@bufbuild/protobuf";
import { Client, credentials, status as Status, type ClientReadableStream } from "@grpc/grpc-js";
import fc from "fast-check";
import { createClient } from "@diego/kit";
import { LockService, TaskCreateRequestSchema, TaskService } from "@diego/proto";
import { EtcdServer, freePort } from "@diego/testing";
import { spawnBbs, type BbsProcess } from "./support/bbs-process.js";
import { taskRequest } from "./support/tasks.js";

// A hostile client against a real BBS process on a real etcd (docs/limits.md): random and mutated
// requests never get INTERNAL and store nothing; huge requests leave other clients and readiness alone;
// thousands of watchers, hundreds of them never reading, keep the BBS's memory bounded.
let etcd: EtcdServer;
let bbs: BbsProcess;
let status: string;
let raw: Client;
const tasks = () => createClient(TaskService, bbs.address, { defaultTimeoutMs: 10_000 });

beforeAll(async () => {
  etcd = await EtcdServer.start();
  status = `127.0.0.1:${await freePort()}`;
  bbs = await spawnBbs([
    "--etcd-endpoints",
    etcd.url,
    "--etcd-prefix",
    `/hostile-${process.pid}`,
    "--listen-address",
    "127.0.0.1:0",
    "--status-address",
    status,
    // Every stream of this test comes from one host; let all 2,000 in (the default is 256 per caller).
    "--max-watchers-per-caller",
    "2000",
  ]);
  raw = new Client(bbs.address, credentials.createInsecure());
}, 90_000);

afterAll(async () => {
  raw?.close();
  bbs?.child.kill("SIGTERM");
  await bbs?.exited;
  await etcd?.remove();
});

const rawDesire = (bytes: Uint8Array) =>
  new Promise<number>((resolve) => {
    raw.makeUnaryRequest(
      "/diego.bbs.v1.TaskService/DesireTask",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(bytes),
      { deadline: Date.now() + 20_000 },
      (err) => resolve(err?.code ?? Status.OK),
    );
  });

const stored = async () => (await tasks().listTasks({})).tasks.length;
const ready = async () => (await fetch(`http://${status}/readyz`)).status;
const rssMiB = () => {
  const line = readFileSync(`/proc/${bbs.child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+) kB/)!;
  return Number(line[1]) / 1024;
};

test("random and mutated TaskCreateRequest bytes and JSON: never INTERNAL, nothing stored from what is refused", async () => {
  const valid = toBinary(TaskCreateRequestSchema, taskRequest({ taskGuid: "fuzz-base" }));
  const fixture = JSON.parse(readFileSync(new URL("../../e2e/fixtures/hello.json", import.meta.url), "utf8")) as Record<
    string,
    JsonValue
  >;
  const mutated = fc
    .array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 })
    .map((flips) => {
      const b = Uint8Array.from(valid);
      for (const [at, v] of flips) b[at] = v;
      return b;
    });
  const jsonValue = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.object());
  const jsonMutation = fc
    .dictionary(fc.constantFrom(...Object.keys(fixture), "task_guid", "labels", "secret_env"), jsonValue)
    .map((over) => ({ ...fixture, task_guid: "fuzz-json", ...over }));
  let before = await stored();
  await fc.assert(
    fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 512 }), mutated), async (bytes) => {
      const code = await rawDesire(bytes);
      expect([Status.INTERNAL, Status.UNKNOWN, Status.UNAVAILABLE]).not.toContain(code);
      const now = await stored();
      if (code !== Status.OK) expect(now).toBe(before);
      before = now;
    }),
    { numRuns: 150 },
  );
  await fc.assert(
    fc.asyncProperty(jsonMutation, async (json) => {
      let request;
      try {
        request = fromJson(TaskCreateRequestSchema, json as JsonValue);
      } catch {
        return; // not a TaskCreateRequest at all: a client library refuses it before the BBS sees it
      }
      const code = await rawDesire(toBinary(TaskCreateRequestSchema, request));
      expect([Status.INTERNAL, Status.UNKNOWN, Status.UNAVAILABLE]).not.toContain(code);
      const now = await stored();
      if (code !== Status.OK) expect(now).toBe(before);
      before = now;
    }),
    { numRuns: 100 },
  );
  expect(await ready()).toBe(200);
}, 180_000);

test("a 20 MB DesireTask and a 1 MiB lock key, repeated: other clients keep succeeding and /readyz stays 200", async () => {
  const others = tasks();
  const locks = createClient(LockService, bbs.address, { defaultTimeoutMs: 10_000 });
  const huge = create(TaskCreateRequestSchema, taskRequest({ annotation: "x".repeat(20_000_000) }));
  let failures = 0;
  let ok = 0;
  const readiness: number[] = [];
  try {
    for (let round = 0; round < 4; round++) {
      const attacks = [
        rawDesire(toBinary(TaskCreateRequestSchema, huge)),
        locks.lock({ key: "k".repeat(1 << 20), owner: "x", value: "v", ttlMs: 10_000n }).then(
          () => Status.OK,
          (e: { code?: string }) => e.code,
        ),
      ];
      const work = Array.from({ length: 10 }, () =>
        others.desireTask(taskRequest()).then(
          () => ok++,
          () => failures++,
        ),
      );
      const [bigCode, lockCode] = await Promise.all(attacks);
      await Promise.all(work);
      readiness.push(await ready());
      expect([Status.RESOURCE_EXHAUSTED, Status.INVALID_ARGUMENT]).toContain(bigCode);
      expect(["INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"]).toContain(lockCode);
    }
    expect(failures).toBe(0);
    expect(ok).toBe(40);
    expect(readiness.every((s) => s === 200)).toBe(true);
  } finally {
    others.close();
    locks.close();
  }
}, 120_000);

test("2,000 watchers, 300 never reading, then large tasks: DesireTask still answers and the BBS grows < 300 MB", async () => {
  const streams: ClientReadableStream<Buffer>[] = [];
  const baseline = rssMiB();
  try {
    for (let i = 0; i < 2000; i++) {
      const call = raw.makeServerStreamRequest(
        "/diego.bbs.v1.TaskService/WatchTasks",
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.alloc(0),
      );
      call.on("error", () => undefined);
      if (i < 300) call.pause();
      else call.on("data", () => undefined);
      streams.push(call);
    }
    const client = tasks();
    try {
      let slowest = 0;
      for (let i = 0; i < 30; i++) {
        const started = Date.now();
        // About 200 KB each, near the encoded-task limit: three env values of 64 KiB.
        const env = [1, 2, 3].map((n) => ({ name: `BIG_${n}`, value: "y".repeat(64 * 1024 - 16) }));
        await client.desireTask(taskRequest({ env }));
        slowest = Math.max(slowest, Date.now() - started);
      }
      // Let the fan-out settle, then measure.
      await new Promise((r) => setTimeout(r, 2_000));
      const grown = rssMiB() - baseline;
      process.stdout.write(
        `hostile watchers: RSS ${baseline.toFixed(0)} → ${(baseline + grown).toFixed(0)} MiB; slowest DesireTask ${slowest} ms\n`,
      );
      expect(grown).toBeLessThan(300);
      expect(slowest).toBeLessThan(10_000);
      expect(await ready()).toBe(200);
    } finally {
      client.close();
    }
  } finally {
    for (const s of streams) s.cancel();
  }
}, 180_000);

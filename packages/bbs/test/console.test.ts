import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startBbs, type RunningBbs } from "../src/index.js";
import { createClient, createLogger } from "@diego/kit";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { TaskCreateRequestSchema, TaskService } from "@diego/proto";
import { ConsoleServer } from "@diego/console";

// The console's HTTP API on an in-process BBS (memory store): what it shows, paging, read-only by
// default, no secrets, and under TLS only callers whose certificate's role may read tasks.
const run = promisify(execFile);
const REPO_ROOT = join(import.meta.dirname, "../../..");
let counter = 0;
const uniqueGuid = (prefix: string) => `${prefix}-${process.pid}-${++counter}`;
const fixtureTask = (_file: "hello.json", guid: string, overrides: Record<string, JsonValue> = {}) =>
  fromJson(TaskCreateRequestSchema, {
    ...(JSON.parse(readFileSync(join(REPO_ROOT, "packages/e2e/fixtures/hello.json"), "utf8")) as Record<
      string,
      JsonValue
    >),
    task_guid: guid,
    ...overrides,
  });
let bbs: RunningBbs;
let base: string;
let tasks: ReturnType<typeof createClient<(typeof TaskService)["method"]>>;

beforeAll(async () => {
  bbs = await startBbs({
    store: "memory",
    listenAddress: "127.0.0.1:0",
    statusAddress: "127.0.0.1:0",
    consoleAddress: "127.0.0.1:0",
  });
  base = bbs.consoleUrl!;
  tasks = createClient(TaskService, bbs.address);
});

afterAll(async () => {
  tasks?.close();
  await bbs?.stop();
});

const get = async (path: string) => {
  const res = await fetch(new URL(path, base));
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

test("the overview and the tasks list, newest first and paged, never with secrets", async () => {
  const domain = `console-api-${process.pid}`;
  const guids: string[] = [];
  for (let i = 0; i < 12; i++) {
    const guid = uniqueGuid("paged");
    guids.push(guid);
    await tasks.desireTask(
      fixtureTask("hello.json", guid, {
        domain,
        root_fs: "docker:///diego/busybox",
        image_username: "u",
        image_password: "s3cret-pass",
      }),
    );
  }
  const first = await get(`/api/tasks?domain=${domain}&page_size=5`);
  expect(first.status).toBe(200);
  expect((first.body.tasks as { task_guid: string }[]).map((t) => t.task_guid)).toEqual(guids.slice(-5).reverse());
  expect(first.body).toMatchObject({ total: 12, next_page_token: "5", counts: { PENDING: 12 } });
  const last = await get(`/api/tasks?domain=${domain}&page_size=5&page_token=10`);
  expect((last.body.tasks as unknown[]).length).toBe(2);
  expect(last.body.next_page_token).toBe("");
  const one = await get(`/api/tasks/${guids[0]}`);
  expect(one.body.task).toMatchObject({ task_guid: guids[0], state: "PENDING", image_username: "u" });
  expect(JSON.stringify(one.body)).not.toContain("s3cret-pass");
  expect((one.body.timeline as { state: string }[])[0]).toMatchObject({ state: "PENDING" });
  const overview = await get("/api/overview");
  expect(overview.body).toMatchObject({ can_cancel: false, leaders: { bbs: bbs.instanceId } });
  expect(JSON.stringify(overview.body)).not.toContain("s3cret-pass");
  expect((await get("/api/tasks?state=DONE")).body.error).toMatch(/state "DONE" is not one of/);
  expect((await get("/api/tasks/nope-404")).status).toBe(404);
});

test("the event stream is live first, then sends every change of a task as it happens", async () => {
  const abort = new AbortController();
  const res = await fetch(new URL("/api/events", base), { signal: abort.signal });
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  const until = async (what: RegExp) => {
    while (!what.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`the stream ended before ${what}`);
      text += decoder.decode(value);
    }
  };
  await until(/event: live/);
  const guid = uniqueGuid("events");
  await tasks.desireTask(fixtureTask("hello.json", guid));
  await tasks.cancelTask({ taskGuid: guid });
  await until(new RegExp(`event: task\ndata: \\{"kind":"created","task":\\{"task_guid":"${guid}"`));
  await until(new RegExp(`"kind":"changed","task":\\{"task_guid":"${guid}".*"state":"COMPLETED"`));
  abort.abort();
});

test("the console is read-only unless the BBS allows cancelling, and a cancel must come from its page", async () => {
  const guid = uniqueGuid("readonly");
  await tasks.desireTask(fixtureTask("hello.json", guid));
  const refused = await fetch(new URL(`/api/tasks/${guid}/cancel`, base), {
    method: "POST",
    headers: { "x-diego-console": "1" },
  });
  expect(refused.status).toBe(403);
  expect(((await refused.json()) as { error: string }).error).toMatch(/read-only/);

  const writable = new ConsoleServer(
    { tasks: clientHandlers(), cells: { listCells: async () => ({ cells: [] }) }, leaders: async () => ({}) },
    { address: "127.0.0.1:0", allowCancel: true, logger: createLogger("console-test", "silent") },
  );
  const url = await writable.listen();
  try {
    const noHeader = await fetch(new URL(`/api/tasks/${guid}/cancel`, url), { method: "POST" });
    expect(noHeader.status).toBe(403);
    const ok = await fetch(new URL(`/api/tasks/${guid}/cancel`, url), {
      method: "POST",
      headers: { "x-diego-console": "1" },
    });
    expect(ok.status).toBe(200);
    expect(await tasks.getTask({ taskGuid: guid })).toMatchObject({
      failed: true,
      failureReason: "task was cancelled",
    });
  } finally {
    await writable.close();
  }
});

test("a plaintext console is refused on an address that is not loopback", async () => {
  const c = new ConsoleServer(
    { tasks: clientHandlers(), cells: { listCells: async () => ({ cells: [] }) }, leaders: async () => ({}) },
    { address: "0.0.0.0:0", allowCancel: false, logger: createLogger("console-test", "silent") },
  );
  await expect(c.listen()).rejects.toThrow(/refusing a plaintext console on 0.0.0.0:0/);
});

describe("with TLS", () => {
  let certs: string;
  let tlsBbs: RunningBbs;
  beforeAll(async () => {
    certs = mkdtempSync(join(tmpdir(), "diego-console-certs-"));
    await run(join(REPO_ROOT, "scripts/make-certs"), [certs]);
    tlsBbs = await startBbs({
      store: "memory",
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      consoleAddress: "127.0.0.1:0",
      tlsCaFile: join(certs, "ca.crt"),
      tlsCertFile: join(certs, "bbs.crt"),
      tlsKeyFile: join(certs, "bbs.key"),
    });
  }, 60_000);
  afterAll(() => tlsBbs?.stop());

  const https = (path: string, name?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(
        new URL(path, tlsBbs.consoleUrl),
        {
          ca: readFileSync(join(certs, "ca.crt")),
          ...(name
            ? { cert: readFileSync(join(certs, `${name}.crt`)), key: readFileSync(join(certs, `${name}.key`)) }
            : {}),
        },
        (res) => {
          let body = "";
          res.on("data", (d: Buffer) => (body += d.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
      req.end();
    });

  test("it is served over HTTPS; a client certificate reads, a cell's is refused naming the role, none is refused", async () => {
    expect(tlsBbs.consoleUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
    const ok = await https("/api/overview", "client");
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body).identity).toBe("client diego-client");
    const cell = await https("/api/tasks/some-task", "cell-1");
    expect(cell.status).toBe(403);
    expect(JSON.parse(cell.body).error).toMatch(/GetTask needs role client; the caller is cell cell-1/);
    expect((await https("/api/overview", "cell-1")).status).toBe(403);
    await expect(https("/api/overview")).rejects.toThrow();
    expect((await https("/", "client")).body).toContain("<title>diego console</title>");
  });
});

/** A second console's backend over the same BBS: its client API through a gRPC client, in the handlers' shapes. */
function clientHandlers() {
  return {
    getTask: (r: { taskGuid: string }) => tasks.getTask(r),
    listTasks: (r: never) => tasks.listTasks(r),
    cancelTask: (r: { taskGuid: string }) => tasks.cancelTask(r),
    watchTasks: (r: never) => tasks.watchTasks(r),
    taskLogs: (r: never) => tasks.taskLogs(r),
  } as never;
}

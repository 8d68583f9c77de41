import { createHash } from "node:crypto";
import { gzipSync } from "node:zlib";
import type { JsonValue } from "@bufbuild/protobuf";
import { FailureKind, LogLine_Stream, TaskState, type LogLine, type Task } from "@diego/proto";
import {
  Cluster,
  containersOf,
  eventually,
  fixtureTask,
  HttpReceiver,
  uniqueGuid,
  waitForState,
} from "../src/index.js";

// Against the live cluster: each action, their combinations, failure texts, env layering,
// limits, download and upload through local HTTP servers, logs during and after a task, cancel mid-action.
let cluster: Cluster;
let files: HttpReceiver;

/** A minimal ustar archive with one regular file. */
function tarOf(name: string, content: string): Buffer {
  const header = Buffer.alloc(512);
  const body = Buffer.from(content);
  header.write(name, 0, 100);
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${body.length.toString(8).padStart(11, "0")}\0`, 124);
  header.write(
    `${Math.floor(Date.now() / 1000)
      .toString(8)
      .padStart(11, "0")}\0`,
    136,
  );
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\0", 257);
  header.write("00", 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
  return Buffer.concat([header, body, pad, Buffer.alloc(1024)]);
}

const plain = "plain file contents\n";
const tgz = gzipSync(tarOf("inner/hello.txt", "from the archive\n"));

beforeAll(async () => {
  files = await new HttpReceiver((req) => {
    if (req.url === "/plain.txt") return { status: 200, body: plain };
    if (req.url === "/bundle.tgz") return { status: 200, body: tgz };
    if (req.url.startsWith("/upload")) return { status: 200, body: "thanks" };
    return { status: 404, body: "nope" };
  }).listen();
  cluster = await Cluster.start({
    cells: [
      { id: "cell-1" },
      // Takes only tasks tagged "pooled": the limit tests run there too, in pooled containers.
      { id: POOLED_CELL, args: ["--container-pool", "--container-pool-size", "1", "--placement-tags", "pooled"] },
    ],
  });
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
  await files?.close();
});

/** Runs a task to completion; its result_file is /tmp/result only when the test reads a result. */
async function runTask(action: JsonValue, extra: Record<string, JsonValue> = {}): Promise<Task> {
  const guid = uniqueGuid("act");
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid, { result_file: "", action, ...extra }));
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED], 180_000);
  return task;
}

async function done(task: Task): Promise<void> {
  await cluster.tasks.resolvingTask({ taskGuid: task.taskGuid }).catch(() => undefined);
  await cluster.tasks.deleteTask({ taskGuid: task.taskGuid }).catch(() => undefined);
}

async function logsOf(guid: string): Promise<LogLine[]> {
  const lines: LogLine[] = [];
  for await (const line of cluster.tasks.taskLogs({ taskGuid: guid, follow: false })) lines.push(line);
  return lines;
}

const POOLED_CELL = "cell-pooled";

/** A metric of the pooled cell: the sum of its samples whose labels contain `labels`. */
async function poolMetric(name: string, labels = ""): Promise<number> {
  const res = await fetch(`http://${cluster.cell(POOLED_CELL).statusAddress}/metrics`);
  const lines = (await res.text()).split("\n").filter((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return lines.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
}

/**
 * Runs the task on the pooled cell, in a container of its pool: a task of the same shape (image, disk)
 * and limits goes first, so the pool has one ready made with those limits (docs/performance.md, "The
 * container pool"); the task must have taken one.
 */
async function runPooled(action: JsonValue, extra: Record<string, JsonValue> = {}): Promise<Task> {
  const limits = Object.fromEntries(
    Object.entries(extra).filter(([k]) => ["memory_mb", "cpu_weight", "max_pids"].includes(k)),
  );
  const shape = { ...limits, placement_tags: ["pooled"], env: [], disk_mb: extra.disk_mb ?? 64 };
  const hits = () => poolMetric("ContainerPoolClaims", 'result="hit"');
  const before = await hits();
  const first = await runTask(sh("true"), shape);
  await done(first);
  // The first task's claim set the pool filling its shape: once nothing is being created, it is ready.
  await eventually(
    "a ready pooled container",
    async () => (await poolMetric("ContainerPoolCreating")) === 0 && (await poolMetric("ContainerPoolReady")) > 0,
    60_000,
  );
  const afterFirst = await hits();
  const task = await runTask(action, { ...extra, ...shape });
  expect(await hits()).toBe(afterFirst + 1);
  expect(afterFirst).toBeGreaterThanOrEqual(before);
  return task;
}

const withResult = { result_file: "/tmp/result" };
const sh = (script: string, more: Record<string, JsonValue> = {}) => ({
  run: { path: "/bin/sh", args: ["-c", script], ...more },
});

test("env layering: task env, then the run action's env wins", async () => {
  const task = await runTask(
    sh('printf "%s %s" "$GREETING" "$ONLY_TASK" > /tmp/result', { env: [{ name: "GREETING", value: "from-action" }] }),
    {
      ...withResult,
      env: [
        { name: "GREETING", value: "from-task" },
        { name: "ONLY_TASK", value: "task-value" },
      ],
    },
  );
  expect(task).toMatchObject({ failed: false, result: "from-action task-value" });
  await done(task);
});

test("run honours dir, user and args", async () => {
  const task = await runTask(
    {
      run: {
        path: "/bin/sh",
        args: ["-c", 'printf "%s:%s" "$(pwd)" "$(id -un)" > /tmp/result'],
        dir: "/tmp",
        user: "vcap",
      },
    },
    withResult,
  );
  expect(task).toMatchObject({ failed: false, result: "/tmp:vcap" });
  await done(task);
});

test("a run without dir as vcap starts in its home, with the CF_INSTANCE_* variables", async () => {
  const task = await runTask(
    {
      run: {
        path: "/bin/sh",
        args: [
          "-c",
          'echo x > thingy && printf "%s|%s|%s|%s|%s|%s|%s" "$(pwd)" "$(cat thingy)" "$CF_INSTANCE_ADDR" "$CF_INSTANCE_PORT" "$CF_INSTANCE_PORTS" "${CF_INSTANCE_IP:+ip}" "${CF_INSTANCE_INTERNAL_IP:+internal}" > /tmp/result; env | grep -q "^CF_INSTANCE_ADDR=$"',
        ],
        user: "vcap",
      },
    },
    withResult,
  );
  expect(task).toMatchObject({ failed: false, result: "/home/vcap|x|||[]|ip|internal" });
  await done(task);
});

test("serial runs in order and stops at the first failure", async () => {
  const task = await runTask(
    {
      serial: {
        actions: [sh("printf a >> /tmp/result"), sh("printf b >> /tmp/result; exit 2"), sh("printf c >> /tmp/result")],
      },
    },
    withResult,
  );
  expect(task).toMatchObject({ failed: true, failureReason: "DEMO: Exited with status 2", result: "ab" });
  await done(task);
});

test("parallel waits for all and joins the errors", async () => {
  const task = await runTask({
    parallel: { actions: [sh("sleep 1; printf x > /tmp/x"), sh("exit 4"), sh("exit 5")] },
  });
  expect(task.failed).toBe(true);
  expect(task.failureReason).toContain("Exited with status 4");
  expect(task.failureReason).toContain("Exited with status 5");
  await done(task);
});

test("try swallows a failure", async () => {
  const task = await runTask(
    { serial: { actions: [{ try: { action: sh("exit 9") } }, sh("printf ok > /tmp/result")] } },
    withResult,
  );
  expect(task).toMatchObject({ failed: false, result: "ok" });
  await done(task);
});

test("timeout fails with the Go duration text", async () => {
  const task = await runTask({ timeout: { action: { run: { path: "/bin/sleep", args: ["60"] } }, timeout_ms: 1500 } });
  expect(task.failed).toBe(true);
  expect(task.failureReason).toMatch(/^exceeded 1\.5s timeout/);
  expect([task.failureKind, task.exitStatus]).toEqual([FailureKind.TIMED_OUT, undefined]);
  await done(task);
});

test("a run that exits 3 is EXITED with exit_status 3, times in order", async () => {
  const task = await runTask(sh("echo before; exit 3"));
  expect(task).toMatchObject({
    failureReason: "DEMO: Exited with status 3",
    failureKind: FailureKind.EXITED,
    exitStatus: 3,
  });
  expect(task.claimedAt > 0n && task.claimedAt <= task.startedAt && task.startedAt <= task.completedAt).toBe(true);
  await done(task);
});

test("log_source of composite actions names their children's log lines and failure texts", async () => {
  const task = await runTask({
    parallel: {
      log_source: "PAR",
      actions: [
        { serial: { log_source: "SER", actions: [sh("echo in-serial")] } },
        { try: { log_source: "TRY", action: sh("echo in-try; exit 4") } },
        { codependent: { log_source: "COD", actions: [sh("echo in-cod; exit 5")] } },
        { timeout: { log_source: "TMO", timeout_ms: 60_000, action: sh("echo in-timeout; exit 6") } },
      ],
    },
  });
  expect(task.failureReason).toBe("COD: Exited with status 5; TMO: Exited with status 6");
  const sources = new Map((await logsOf(task.taskGuid)).map((l) => [l.message, l.source]));
  expect([sources.get("in-serial"), sources.get("in-try"), sources.get("in-cod"), sources.get("in-timeout")]).toEqual([
    "SER",
    "TRY",
    "COD",
    "TMO",
  ]);
  await done(task);
});

test("codependent: the first to exit stops the others", async () => {
  const task = await runTask({
    codependent: { actions: [{ run: { path: "/bin/sleep", args: ["60"] } }, sh("exit 0")] },
  });
  expect(task.failed).toBe(true);
  await done(task);
});

test("emit_progress writes its messages to the task's log", async () => {
  const task = await runTask({
    emit_progress: {
      action: sh("echo working"),
      start_message: "starting up",
      success_message: "all done",
      failure_message_prefix: "it broke",
    },
  });
  expect(task.failed).toBe(false);
  const messages = (await logsOf(task.taskGuid)).map((l) => l.message);
  expect(messages).toEqual(expect.arrayContaining(["starting up", "working", "all done"]));
  await done(task);
});

test("download: a plain file and a tgz archive with a checksum, fetched by the cell", async () => {
  const sha = createHash("sha256").update(tgz).digest("hex");
  const task = await runTask(
    {
      serial: {
        actions: [
          { download: { from: files.url("/plain.txt"), to: "/tmp/plain.txt" } },
          {
            download: {
              from: files.url("/bundle.tgz"),
              to: "/tmp/bundle",
              checksum_algorithm: "sha256",
              checksum_value: sha,
              cache_key: "bundle",
            },
          },
          sh("cat /tmp/plain.txt /tmp/bundle/inner/hello.txt > /tmp/result"),
        ],
      },
    },
    withResult,
  );
  expect(task).toMatchObject({ failed: false, result: `${plain}from the archive\n` });
  await done(task);
});

test("download with a wrong checksum fails the task", async () => {
  const task = await runTask({
    download: {
      from: files.url("/bundle.tgz"),
      to: "/tmp/b",
      checksum_algorithm: "sha256",
      checksum_value: "00".repeat(32),
    },
  });
  expect(task.failed).toBe(true);
  await done(task);
});

test("upload POSTs a file out of the container", async () => {
  const task = await runTask({
    serial: {
      actions: [
        sh("printf 'upload me' > /tmp/out.txt"),
        { upload: { from: "/tmp/out.txt", to: files.url("/upload/out") } },
      ],
    },
  });
  expect(task.failed).toBe(false);
  const upload = files.requests.find((r) => r.url === "/upload/out");
  expect(upload?.method).toBe("POST");
  expect(upload?.body.toString()).toBe("upload me");
  await done(task);
});

describe.each([
  ["a new container", runTask],
  ["a pooled container", runPooled],
])("limits in %s", (_name, run) => {
  test("the memory limit kills a process that exceeds it: (out of memory)", async () => {
    const task = await run(sh("head -c 200000000 /dev/zero | tail > /dev/null"), { memory_mb: 32 });
    expect(task.failed).toBe(true);
    expect(task.failureReason).toMatch(/^DEMO: Exited with status \d+ \(out of memory\)$/);
    expect(task).toMatchObject({ failureKind: FailureKind.OUT_OF_MEMORY, exitStatus: 137 });
    expect(task.claimedAt <= task.startedAt && task.startedAt <= task.completedAt).toBe(true);
    await done(task);
  });

  test("the disk limit stops writes beyond disk_mb", async () => {
    const task = await run(
      sh(
        "dd if=/dev/zero of=/tmp/big bs=1M count=100 2>/dev/null; size=$(du -m /tmp/big | cut -f1); rm -f /tmp/big; echo $size > /tmp/result",
      ),
      { ...withResult, disk_mb: 20 },
    );
    expect(task.failed).toBe(false);
    expect(Number(task.result)).toBeLessThan(25);
    await done(task);
  });
});

test("logs during and after a task, tagged by stream and source", async () => {
  const guid = uniqueGuid("logs");
  await cluster.tasks.desireTask(
    fixtureTask("hello.json", guid, { action: sh("echo out-line; echo err-line >&2; sleep 3; echo late-line") }),
  );
  const followed: LogLine[] = [];
  for await (const line of cluster.tasks.taskLogs({ taskGuid: guid, follow: true })) followed.push(line);
  expect(followed.map((l) => l.message)).toEqual(expect.arrayContaining(["out-line", "err-line", "late-line"]));
  const err = followed.find((l) => l.message === "err-line");
  expect(err).toMatchObject({ stream: LogLine_Stream.STDERR, source: "DEMO" });
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]);
  const after = (await logsOf(guid)).map((l) => l.message);
  expect(after).toEqual(expect.arrayContaining(["out-line", "err-line", "late-line"]));
  await done(task);
  await expect(logsOf("no-such-task")).rejects.toMatchObject({ code: "NOT_FOUND" });
});

test("cancel mid-action stops the container at once", async () => {
  const guid = uniqueGuid("cancel-mid");
  await cluster.tasks.desireTask(
    fixtureTask("hello.json", guid, {
      action: { serial: { actions: [sh("echo first"), { run: { path: "/bin/sleep", args: ["300"] } }] } },
    }),
  );
  await waitForState(cluster.tasks, guid, [TaskState.RUNNING]);
  await eventually(
    "the first step's output",
    async () => (await logsOf(guid)).some((l) => l.message === "first"),
    60_000,
  );
  await cluster.tasks.cancelTask({ taskGuid: guid });
  await eventually("the container to be gone", async () => (await containersOf(guid)).length === 0, 60_000);
  const task = await cluster.tasks.getTask({ taskGuid: guid });
  expect(task.failureReason).toBe("task was cancelled");
  await done(task);
});

test("an image that cannot be found fails the task with its reference", async () => {
  const task = await runTask(sh("true"), { root_fs: "docker:///diego/no-such-image#v9" });
  expect(task.failed).toBe(true);
  expect(task.failureReason).toMatch(/^failed to fetch image diego\/no-such-image:v9: /);
  await done(task);
});

test("preloaded:busybox runs the local image", async () => {
  const task = await runTask(sh("printf pre > /tmp/result"), { ...withResult, root_fs: "preloaded:busybox" });
  expect(task).toMatchObject({ failed: false, result: "pre" });
  await done(task);
});

test("a missing result file fails a task that succeeded", async () => {
  const task = await runTask(sh("true"), { result_file: "/tmp/nothing-here" });
  expect(task).toMatchObject({ failed: true, failureReason: "failed to fetch result" });
  await done(task);
});

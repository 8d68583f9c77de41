// Every action, limit and log path on the real Docker engine, through a cell, the BBS and the auctioneer.
import { createClient } from "@diego/kit";
import { TaskService, TaskState, type Task } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { ActionSchema, TaskCreateRequestSchema } from "@diego/proto";
import { FailureReason } from "@diego/models";
import { imageFor } from "../src/executor/image-resolver.js";
import { containerLabels } from "../src/executor/labels.js";
import { cpuShares } from "../src/executor/task-runner.js";
import type { ContainerSpec } from "../src/runtime/container-runtime.js";
import { hostAllowsPrivileged } from "../src/runtime/privileged-config.js";
import { eventually } from "@diego/testing";
import { startHarness, uniqueId, type Harness } from "./support/harness.js";
import { HttpFixture, sha256, tarball } from "./support/http-fixtures.js";

type ActionInit = MessageInitShape<typeof ActionSchema>;
type TaskInit = MessageInitShape<typeof TaskCreateRequestSchema>;
const sh = (script: string, extra: Record<string, unknown> = {}): ActionInit => ({
  action: { case: "run", value: { path: "/bin/sh", args: ["-c", script], ...extra } },
});
const serial = (...actions: ActionInit[]): ActionInit => ({ action: { case: "serial", value: { actions } } });
const parallel = (...actions: ActionInit[]): ActionInit => ({ action: { case: "parallel", value: { actions } } });

let h: Harness;
/** A cell with the container pool on, in h's cluster. */
let pooled: Harness;
let http: HttpFixture;
let tasks: ReturnType<typeof createClient<(typeof TaskService)["method"]>>;

beforeAll(async () => {
  http = await HttpFixture.start();
  h = await startHarness("docker", { reconcileInterval: 2000 });
  pooled = await startHarness(
    "docker",
    { reconcileInterval: 2000, containerPool: true, containerPoolSize: 1, placementTags: ["pooled"] },
    { cluster: h.cluster },
  );
  tasks = createClient(TaskService, h.cluster.address);
});
afterAll(async () => {
  await pooled?.stop();
  tasks?.close();
  await h?.stop();
  await http?.close();
});

async function runTask(over: Partial<TaskInit>): Promise<Task> {
  const guid = uniqueId("dt");
  await h.cluster.desire({
    taskGuid: guid,
    domain: "docker-test",
    rootFs: "docker:///diego/busybox",
    ...over,
  } as TaskInit);
  return h.cluster.completed(guid, 90_000);
}

/**
 * Runs the task on the pooled cell in a container of its pool: when none it could take is ready, a task of
 * the same shape and limits goes first (the pool makes its containers with the limits its last task wanted).
 */
async function runPooled(over: Partial<TaskInit>): Promise<Task> {
  const pool = pooled.cell.cell.parts.pool!;
  const shape = { ...over, rootFs: "docker:///diego/busybox", placementTags: ["pooled"] } as Partial<TaskInit> & {
    rootFs: string;
  };
  const resolved = imageFor(shape.rootFs, {});
  const image = "image" in resolved ? resolved.image : "";
  const probe: ContainerSpec = {
    name: "",
    image,
    imageId: await pooled.cell.cell.parts.runtime.imageId(image),
    labels: {},
    env: [],
    memoryMb: over.memoryMb ?? 0,
    diskMb: pooled.cell.diskQuota.enforced ? (over.diskMb ?? 0) : 0,
    cpuShares: cpuShares(over.cpuWeight ?? 0),
    maxPids: over.maxPids || pooled.config.maxPids,
    privileged: false,
    network: pooled.config.network,
  };
  if (pool.readyFor(probe) === 0) {
    const limits = { memoryMb: over.memoryMb, cpuWeight: over.cpuWeight, maxPids: over.maxPids };
    const first = {
      ...limits,
      rootFs: shape.rootFs,
      placementTags: shape.placementTags,
      diskMb: over.diskMb,
      action: sh("true"),
    };
    expect((await runTask(first)).failed).toBe(false);
    await eventually("a pooled container of the shape", async () => pool.readyFor(probe) > 0, 60_000);
  }
  const hits = pool.stats().hits;
  const t = await runTask(shape);
  expect(pool.stats().hits).toBe(hits + 1);
  return t;
}

async function logsOf(guid: string): Promise<string[]> {
  const out: string[] = [];
  for await (const l of tasks.taskLogs({ taskGuid: guid, follow: false })) out.push(l.message);
  return out;
}

describe("run", () => {
  test("exit status text uses the action's log source, else the task's, else LOG", async () => {
    expect((await runTask({ action: sh("exit 3") })).failureReason).toBe("LOG: Exited with status 3");
    expect((await runTask({ logSource: "TASK", action: sh("exit 4") })).failureReason).toBe(
      "TASK: Exited with status 4",
    );
    expect((await runTask({ logSource: "TASK", action: sh("exit 5", { logSource: "ACT" }) })).failureReason).toBe(
      "ACT: Exited with status 5",
    );
  });

  test("env: image, then task env, then action env (later wins); dir and user apply", async () => {
    const t = await runTask({
      env: [
        { name: "A", value: "task" },
        { name: "B", value: "task" },
      ],
      action: sh('echo "$PATH|$A|$B|$(pwd)|$(id -un)" > /tmp/r', {
        env: [{ name: "B", value: "action" }],
        dir: "/tmp",
        user: "root",
      }),
      resultFile: "/tmp/r",
    });
    expect(t.result).toBe("/bin|task|action|/tmp|root\n");
    const v = await runTask({
      action: sh("id -un > /tmp/who; cp /tmp/who /tmp/r", { user: "vcap" }),
      resultFile: "/tmp/r",
    });
    expect(v.result).toBe("vcap\n");
  });

  test("a non-root user without dir works in its home; CF_INSTANCE_* name the cell and the container", async () => {
    const t = await runTask({
      action: sh('echo x > thingy; echo "$(pwd)|$(cat thingy)|$CF_INSTANCE_IP|$CF_INSTANCE_PORTS" > /tmp/r', {
        user: "vcap",
      }),
      resultFile: "/tmp/r",
    });
    expect(t).toMatchObject({ failed: false, result: "/home/vcap|x|127.0.0.1|[]\n" });
  });

  test("nofile sets RLIMIT_NOFILE", async () => {
    const t = await runTask({
      action: sh("ulimit -n > /tmp/r", { resourceLimits: { nofile: 321n } }),
      resultFile: "/tmp/r",
    });
    expect(t.result).toBe("321\n");
  });

  test("unprivileged: no new privileges and a reduced capability set; privileged gets them all where the host can", async () => {
    const u = await runTask({
      action: sh("grep -E '^(CapEff|NoNewPrivs)' /proc/self/status > /tmp/r"),
      resultFile: "/tmp/r",
    });
    expect(u.result).toMatch(/NoNewPrivs:\s+1/);
    const capU = BigInt(`0x${/CapEff:\s+([0-9a-f]+)/.exec(u.result)![1]}`);
    const NET_RAW = 1n << 13n;
    const MKNOD = 1n << 27n;
    expect(capU & NET_RAW).toBe(0n);
    expect(capU & MKNOD).toBe(0n);
    const p = await runTask({
      privileged: true,
      action: sh("grep -E '^(CapEff|NoNewPrivs)' /proc/self/status > /tmp/r"),
      resultFile: "/tmp/r",
    });
    if (!hostAllowsPrivileged()) {
      // No unconfined fallback: a cell on this host does not offer privileged tasks at all.
      expect(p).toMatchObject({ failed: true, failureReason: FailureReason.noPrivilegedCell });
      return;
    }
    expect(p.failureReason).toBe("");
    expect(p.result).toMatch(/NoNewPrivs:\s+0/);
    const capP = BigInt(`0x${/CapEff:\s+([0-9a-f]+)/.exec(p.result)![1]}`);
    expect(capP & capU).toBe(capU);
    expect(capP > capU).toBe(true);
  });

  test("outbound network by default", async () => {
    http.serve("/net.txt", "reachable");
    const t = await runTask({ action: sh(`wget -q -O /tmp/r ${http.containerUrl("/net.txt")}`), resultFile: "/tmp/r" });
    expect(t).toMatchObject({ failed: false, result: "reachable" });
  });
});

// The limits hold the same in a new container and in a pooled one (docs/performance.md, "The container
// pool"): the pooled cell takes tasks tagged "pooled" only, and each test there checks its task took a
// ready container (a task of the shape first, so the pool has one).
interface Variant {
  harness: () => Harness;
  run: (over: Partial<TaskInit>) => Promise<Task>;
}
const variants: Array<[string, Variant]> = [
  ["a new container", { harness: () => h, run: (over) => runTask(over) }],
  ["a pooled container", { harness: () => pooled, run: (over) => runPooled(over) }],
];

describe.each(variants)("limits in %s", (_name, v) => {
  test("memory limit: the process is OOM-killed and the reason says so", async () => {
    const t = await v.run({ memoryMb: 24, action: sh("x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}") });
    expect(t.failed).toBe(true);
    expect(t.failureReason).toBe("LOG: Exited with status 137 (out of memory)");
  });

  test("memory, swap, cpu shares and pids limits reach the container's cgroups", async () => {
    const t = await v.run({
      memoryMb: 64,
      cpuWeight: 50,
      maxPids: 33,
      action: sh(
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/pids/pids.max > /tmp/r; cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes >> /tmp/r 2>/dev/null; true",
      ),
      resultFile: "/tmp/r",
    });
    const [mem, shares, pids, memsw] = t.result.trim().split("\n");
    expect([mem, shares, pids]).toEqual([String(64 * 1024 * 1024), "512", "33"]);
    if (memsw) expect(memsw).toBe(String(64 * 1024 * 1024));
  });

  test("disk_mb is enforced on a quota-capable driver: writes past it fail", async () => {
    if (!v.harness().cell.diskQuota.enforced) {
      // The cell said so at start (and the storage setup is scripts/test's): nothing to enforce here.
      console.warn(`disk_mb not enforced on this engine: ${v.harness().cell.diskQuota.reason}`);
      return;
    }
    const t = await v.run({
      diskMb: 20,
      action: sh(
        "dd if=/dev/zero of=/tmp/big bs=1M count=60 2>/tmp/err; s=$?; ls -l /tmp/big | awk '{print $5}' > /tmp/r; exit $s",
      ),
      resultFile: "/tmp/r",
    });
    expect(t.failed).toBe(true);
    expect(t.failureReason).toBe("LOG: Exited with status 1");
    expect(Number(t.result.trim())).toBeLessThan(21 * 1024 * 1024);
  });
});

describe("download and upload through local HTTP servers", () => {
  test("a tgz extracted at `to`, a plain file placed, checksummed, owned by the user; a file uploaded", async () => {
    http.serve("/app.tgz", await tarball({ "bin/hello.sh": "echo hello from the archive\n", README: "readme" }, true));
    http.serve("/conf.txt", "conf!");
    const before = http.uploads.length;
    const t = await runTask({
      action: serial(
        {
          action: {
            case: "download",
            value: {
              from: http.url("/app.tgz"),
              to: "/home/vcap/app",
              user: "vcap",
              artifact: "app",
              cacheKey: "app-v1",
            },
          },
        },
        {
          action: {
            case: "download",
            value: {
              from: http.url("/conf.txt"),
              to: "/etc/app/conf.txt",
              checksumAlgorithm: "sha256",
              checksumValue: sha256("conf!"),
            },
          },
        },
        sh(
          "sh /home/vcap/app/bin/hello.sh > /tmp/out; stat -c %U /home/vcap/app/README >> /tmp/out; cat /etc/app/conf.txt >> /tmp/out",
        ),
        { action: { case: "upload", value: { from: "/tmp/out", to: http.url("/uploaded"), artifact: "out" } } },
      ),
    });
    expect(t.failureReason).toBe("");
    const u = http.uploads[before];
    expect(u.path).toBe("/uploaded");
    expect(u.body.toString()).toBe("hello from the archive\nvcap\nconf!");
    const lines = await logsOf(t.taskGuid);
    expect(lines).toEqual(expect.arrayContaining(["Downloading app...", "Uploading out...", "Uploaded out (33B)"]));
    expect(lines.some((l) => /^Downloaded app \(\d+B\)$/.test(l))).toBe(true);
  });

  test("download failures and checksum mismatches fail the task", async () => {
    expect(
      (
        await runTask({
          action: { action: { case: "download", value: { from: http.url("/nothing"), to: "/x", artifact: "thing" } } },
        })
      ).failureReason,
    ).toBe("Downloading thing failed");
    http.serve("/c.txt", "content");
    const bad = await runTask({
      action: {
        action: {
          case: "download",
          value: { from: http.url("/c.txt"), to: "/x", checksumAlgorithm: "md5", checksumValue: "00" },
        },
      },
    });
    expect(bad.failureReason).toBe("Downloading failed");
  });

  test("upload of a missing file fails; server errors are retried then fail", async () => {
    expect(
      (await runTask({ action: { action: { case: "upload", value: { from: "/nope", to: http.url("/u") } } } }))
        .failureReason,
    ).toBe("Failed to establish stream from container");
    http.uploadStatuses = [500, 500, 500];
    const t = await runTask({
      action: serial(sh("echo x > /tmp/f"), {
        action: { case: "upload", value: { from: "/tmp/f", to: http.url("/u"), artifact: "f" } },
      }),
    });
    expect(t.failureReason).toBe("Failed to upload payload for f");
  });
});

describe("composites on Docker", () => {
  test("timeout stops the process and fails with `exceeded <duration> timeout`", async () => {
    const t = await runTask({
      action: { action: { case: "timeout", value: { timeoutMs: 500n, action: sh("sleep 30") } } },
    });
    expect(t.failureReason).toBe("exceeded 500ms timeout");
  });

  test("parallel runs side by side and joins errors; serial stops at the first failure", async () => {
    const p = await runTask({
      action: parallel(sh("sleep 0.5; exit 1", { logSource: "A" }), sh("exit 2", { logSource: "B" }), sh("true")),
    });
    expect(p.failureReason).toBe("A: Exited with status 1; B: Exited with status 2");
    const s = await runTask({
      action: serial(sh("echo one > /tmp/r"), sh("exit 7"), sh("echo never >> /tmp/r")),
      resultFile: "/tmp/r",
    });
    expect(s).toMatchObject({ failureReason: "LOG: Exited with status 7", result: "one\n" });
  });

  test("codependent: the first exit stops the rest", async () => {
    const t = await runTask({
      action: { action: { case: "codependent", value: { actions: [sh("sleep 30"), sh("true")] } } },
    });
    expect(t.failureReason).toBe("Codependent step exited");
  });

  test("try swallows a failure; emit_progress writes its messages", async () => {
    const t = await runTask({
      logGuid: "lg",
      action: serial(
        { action: { case: "try", value: { action: sh("exit 9") } } },
        {
          action: {
            case: "emitProgress",
            value: {
              action: sh("exit 3"),
              startMessage: "starting up",
              successMessage: "never",
              failureMessagePrefix: "it broke",
              logSource: "STG",
            },
          },
        },
      ),
    });
    expect(t.failureReason).toBe("STG: Exited with status 3");
    const lines = await logsOf(t.taskGuid);
    expect(lines).toEqual(expect.arrayContaining(["starting up", "it broke: STG: Exited with status 3"]));
  });
});

describe("logs and cancel", () => {
  test("logs stream while the task runs and stay after it ends, tagged with source and stream", async () => {
    const guid = uniqueId("logs");
    await h.cluster.desire({
      taskGuid: guid,
      domain: "d",
      rootFs: "docker:///diego/busybox",
      logGuid: guid,
      logSource: "APP",
      action: sh("echo first; sleep 1; echo second >&2"),
    });
    await h.cluster.waitFor(guid, (t) => t?.state === TaskState.RUNNING);
    const seen: Array<[string, number, string]> = [];
    for await (const l of tasks.taskLogs({ taskGuid: guid, follow: true })) seen.push([l.source, l.stream, l.message]);
    expect(seen).toEqual([
      ["APP", 0, "first"],
      ["APP", 1, "second"],
      ["APP", 0, "Exit status 0"],
    ]);
    await h.cluster.completed(guid);
    expect(await logsOf(guid)).toEqual(["first", "second", "Exit status 0"]);
  });

  test("cancel mid-action: SIGTERM reaches the process, the container goes, the task says cancelled", async () => {
    const guid = uniqueId("cancel");
    await h.cluster.desire({
      taskGuid: guid,
      domain: "d",
      rootFs: "docker:///diego/busybox",
      action: parallel(sh("trap 'echo got TERM; exit 0' TERM; while true; do sleep 0.1; done"), sh("sleep 60")),
    });
    await h.cluster.waitFor(guid, (t) => t?.state === TaskState.RUNNING);
    await eventually(
      "the condition",
      async () =>
        (await logsOf(guid)).length >= 0 && h.cell.cell.runners.get(guid)?.phase === "running" ? true : undefined,
      30_000,
      100,
    );
    await new Promise((r) => setTimeout(r, 500));
    await tasks.cancelTask({ taskGuid: guid });
    expect(await h.cluster.completed(guid)).toMatchObject({ failed: true, failureReason: "task was cancelled" });
    await eventually(
      "container removed",
      async () => ((await h.runtime.list(containerLabels(h.cellId, guid))).length === 0 ? true : undefined),
      30_000,
      100,
    );
    expect(await logsOf(guid)).toContain("got TERM");
  });

  test("an image that cannot be fetched fails the task with the fixed text", async () => {
    const t = await runTask({ rootFs: "docker://localhost:1/nobody/nothing#v1", action: sh("true") });
    expect(t.failureReason).toMatch(/^failed to fetch image localhost:1\/nobody\/nothing:v1: .+/);
  });

  test("preloaded:busybox maps to the configured image", async () => {
    expect(await runTask({ rootFs: "preloaded:busybox", action: sh("true") })).toMatchObject({ failed: false });
  });
});

describe("network off", () => {
  test("an operator setting gives containers no network", async () => {
    const off = await startHarness("docker", { network: false });
    try {
      http.serve("/net2.txt", "reachable");
      await off.cluster.desire({
        taskGuid: "net-off",
        domain: "d",
        rootFs: "docker:///diego/busybox",
        action: sh(`wget -q -T 2 -O /tmp/r ${http.containerUrl("/net2.txt")}`),
      });
      const t = await off.cluster.completed("net-off");
      expect(t.failed).toBe(true);
    } finally {
      await off.stop();
    }
  });
});

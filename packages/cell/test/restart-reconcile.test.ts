// kill -9 a cell process (main.ts) while its task runs a step it cannot follow after a restart (a run
// inside a parallel action), restart the cell: it fails the task with that reason and removes the
// container: no stray container remains. (Tasks it can follow: restart-follow.test.ts.)
import { spawn, type ChildProcess } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { FailureKind, TaskState } from "@diego/proto";
import { cellLabels } from "../src/executor/labels.js";
import { DockerRuntime } from "../src/runtime/docker-runtime.js";
import { InProcessCluster as Cluster } from "@diego/testing";
import { eventually } from "@diego/testing";
import { removeCellContainers, startHarness, uniqueId } from "./support/harness.js";

const root = resolve(import.meta.dirname, "../../..");

test("after a crash and a restart the cell reconciles its old containers", async () => {
  const cluster = await Cluster.start();
  const cellId = uniqueId("crash-cell");
  const workDir = join(tmpdir(), `diego-cell-test-${cellId}`);
  const runtime = new DockerRuntime({ helperDir: join(workDir, "helper") });
  let child: ChildProcess | undefined;
  try {
    child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "packages/cell/src/main.ts",
        "--cell-id",
        cellId,
        "--bbs-address",
        cluster.address,
        "--listen-address",
        "127.0.0.1:0",
        "--status-address",
        "127.0.0.1:0",
        "--work-dir",
        workDir,
        "--memory-mb",
        "1024",
        "--disk-mb",
        "1024",
        "--log-level",
        "warn",
      ],
      { cwd: root, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, NODE_OPTIONS: "" } },
    );
    await cluster.waitForCell(cellId, undefined, 60_000);
    await cluster.desire({
      taskGuid: `${cellId}-task`,
      domain: "d",
      rootFs: "docker:///diego/busybox",
      action: {
        action: {
          case: "parallel",
          value: { actions: [{ action: { case: "run", value: { path: "/bin/sleep", args: ["120"] } } }] },
        },
      },
    });
    await cluster.waitFor(`${cellId}-task`, (t) => t?.state === TaskState.RUNNING, 60_000);
    // Once the step has begun (its cursor journaled): before that a restarted cell runs the tree afresh.
    await eventually(
      "the step's cursor journaled",
      async () =>
        (await readFile(join(workDir, "journal", `${cellId}-task.json`), "utf8").catch(() => "")).includes(
          "unresumable",
        ),
      30_000,
      100,
    );
    child.kill("SIGKILL");
    await new Promise((r) => child!.once("exit", r));
    expect((await runtime.list(cellLabels(cellId))).length).toBe(1);

    const h = await startHarness("docker", { workDir }, { cluster, cellId });
    try {
      const t = await cluster.completed(`${cellId}-task`);
      expect(t).toMatchObject({
        failed: true,
        failureReason: "cell restarted while the task ran a run action inside a parallel action",
        failureKind: FailureKind.CELL_LOST,
      });
      await eventually(
        "old container removed",
        async () => ((await runtime.list(cellLabels(cellId))).length === 0 ? true : undefined),
        30_000,
        100,
      );
    } finally {
      await h.stop();
    }
  } finally {
    if (child && child.exitCode === null) child.kill("SIGKILL");
    await removeCellContainers(runtime, cellId);
    await cluster.stop();
    await rm(workDir, { recursive: true, force: true });
  }
});

test("SIGTERM on main.ts drains, deregisters and exits 0", async () => {
  const cluster = await Cluster.start();
  const cellId = uniqueId("term-cell");
  const workDir = join(tmpdir(), `diego-cell-test-${cellId}`);
  try {
    const child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "packages/cell/src/main.ts",
        "--cell-id",
        cellId,
        "--bbs-address",
        cluster.address,
        "--listen-address",
        "127.0.0.1:0",
        "--status-address",
        "127.0.0.1:0",
        "--work-dir",
        workDir,
        "--heartbeat-ttl",
        "10m",
        "--log-level",
        "info",
      ],
      { cwd: root, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, NODE_OPTIONS: "" } },
    );
    await cluster.waitForCell(cellId, undefined, 60_000);
    // SIGTERM once the cell has fully started (its last start-up line names the status listener).
    await new Promise<void>((resolve) => {
      let out = "";
      child.stdout!.on("data", (c: Buffer) => {
        out += c.toString();
        if (/cell status .*listening on/.test(out)) resolve();
      });
    });
    child.kill("SIGTERM");
    const code = await new Promise((r) => child.once("exit", r));
    expect(code).toBe(0);
    // Its presence would otherwise live for the heartbeat TTL (10 minutes here): gone now means deregistered.
    const deregistered = !(await cluster.cells.listCells({})).cells.some((c) => c.cellId === cellId);
    expect(deregistered).toBe(true);
  } finally {
    await cluster.stop();
    await rm(workDir, { recursive: true, force: true });
  }
});

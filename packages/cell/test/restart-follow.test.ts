// A cell restarted (kill -9 of main.ts) while its task runs picks the task up again: the process Docker
// still runs is followed to its exit, the steps after it run, the result file is read and the outcome
// reported (docs/reliability.md, "The cell keeps every outcome"). The followed processes print a line
// every 100 ms throughout: their output goes to files the restarted cell reads on from where it had
// journaled (docs/reliability.md, "Output files"). Real etcd behind the BBS, real Docker.
import { readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogLine_Stream, TaskState } from "@diego/proto";
import { eventually } from "@diego/testing";
import { cellLabels } from "../src/executor/labels.js";
import { DockerRuntime } from "../src/runtime/docker-runtime.js";
import { removeCellContainers, uniqueId } from "./support/harness.js";
import { CellProcess, processJournaled, RestartableBbs } from "./support/restartable-bbs.js";

/** Prints `line 0` … `line <n-1>`, one every 100 ms. */
const chatty = (n: number) => `i=0; while [ $i -lt ${n} ]; do echo "line $i"; i=$((i+1)); sleep 0.1; done`;

/** Lines the task's processes wrote so far (read from its container's output files). */
async function linesWritten(runtime: DockerRuntime, containerId: string): Promise<number> {
  const info = await runtime.docker.getContainer(containerId).inspect();
  const dir = `/proc/${info.State.Pid}/root/.diego-output`;
  let lines = 0;
  for (const f of await readdir(dir))
    if (f.endsWith(".out")) lines += (await readFile(join(dir, f), "utf8")).split("\n").length - 1;
  return lines;
}

const run = (script: string) => ({
  action: { case: "run" as const, value: { path: "/bin/sh", args: ["-c", script] } },
});

test("a task running when the cell restarts is followed to the end with its result", async () => {
  const bbs = await RestartableBbs.start();
  const cellId = uniqueId("follow");
  const workDir = join(tmpdir(), `diego-cell-test-${cellId}`);
  const runtime = new DockerRuntime({ helperDir: join(workDir, "helper") });
  const cell = new CellProcess(cellId, bbs.address, workDir);
  const guid = `${cellId}-task`;
  try {
    cell.start();
    await bbs.waitForCell(cellId);
    await bbs.tasks.desireTask({
      taskGuid: guid,
      domain: "d",
      rootFs: "docker:///diego/busybox",
      resultFile: "/tmp/result",
      action: {
        action: {
          case: "serial",
          value: {
            actions: [
              run(`${chatty(80)}; printf first > /tmp/result`),
              run("echo second; printf -- -second >> /tmp/result"),
            ],
          },
        },
      },
    });
    await bbs.waitForState(guid, TaskState.RUNNING);
    await processJournaled(workDir, guid); // the first process runs
    await new Promise((r) => setTimeout(r, 1_500)); // its offsets journaled at least once
    await cell.kill();
    const [container] = await runtime.list(cellLabels(cellId));
    expect(container?.status).toBe("running");
    const writtenAtKill = await linesWritten(runtime, container.id);
    expect(writtenAtKill).toBeLessThan(80);

    cell.start();
    const t = await bbs.waitForState(guid, TaskState.COMPLETED, 120_000);
    expect({ failed: t.failed, failureReason: t.failureReason, result: t.result, exitStatus: t.exitStatus }).toEqual({
      failed: false,
      failureReason: "",
      result: "first-second",
      exitStatus: 0,
    });
    // The log tail goes on from the last offset the killed cell journaled: every line after it once, those
    // written while no cell ran included, to the last.
    const logged: string[] = [];
    for await (const l of bbs.tasks.taskLogs({ taskGuid: guid, follow: false }))
      if (l.stream === LogLine_Stream.STDOUT) logged.push(l.message);
    const numbered = logged.filter((m) => m.startsWith("line ")).map((m) => Number(m.slice(5)));
    const from = numbered[0];
    expect(from).toBeLessThanOrEqual(writtenAtKill);
    expect(numbered).toEqual(Array.from({ length: 80 - from }, (_, i) => from + i));
    expect(logged.slice(-3)).toEqual(["Exit status 0", "second", "Exit status 0"]);
    await eventually(
      "the container removed",
      async () => (await runtime.list(cellLabels(cellId))).length === 0,
      30_000,
      200,
    );
  } finally {
    await cell.stop();
    await bbs.stop();
    await removeCellContainers(runtime, cellId);
    await rm(workDir, { recursive: true, force: true });
  }
}, 240_000);

test("a failing followed process fails the task with its own exit status", async () => {
  const bbs = await RestartableBbs.start();
  const cellId = uniqueId("follow-fail");
  const workDir = join(tmpdir(), `diego-cell-test-${cellId}`);
  const runtime = new DockerRuntime({ helperDir: join(workDir, "helper") });
  const cell = new CellProcess(cellId, bbs.address, workDir);
  const guid = `${cellId}-task`;
  try {
    cell.start();
    await bbs.waitForCell(cellId);
    await bbs.tasks.desireTask({
      taskGuid: guid,
      domain: "d",
      rootFs: "docker:///diego/busybox",
      logSource: "APP",
      action: run(`${chatty(60)}; exit 3`),
    });
    await bbs.waitForState(guid, TaskState.RUNNING);
    await processJournaled(workDir, guid);
    await cell.kill();
    cell.start();
    const t = await bbs.waitForState(guid, TaskState.COMPLETED, 120_000);
    expect({ failed: t.failed, failureReason: t.failureReason }).toEqual({
      failed: true,
      failureReason: "APP: Exited with status 3",
    });
  } finally {
    await cell.stop();
    await bbs.stop();
    await removeCellContainers(runtime, cellId);
    await rm(workDir, { recursive: true, force: true });
  }
}, 240_000);

test("a task the BBS finished while the cell was away is stopped, not reported over", async () => {
  const bbs = await RestartableBbs.start();
  const cellId = uniqueId("follow-gone");
  const workDir = join(tmpdir(), `diego-cell-test-${cellId}`);
  const runtime = new DockerRuntime({ helperDir: join(workDir, "helper") });
  const cell = new CellProcess(cellId, bbs.address, workDir);
  const guid = `${cellId}-task`;
  try {
    cell.start();
    await bbs.waitForCell(cellId);
    await bbs.tasks.desireTask({
      taskGuid: guid,
      domain: "d",
      rootFs: "docker:///diego/busybox",
      action: run(`${chatty(300)}; printf late > /tmp/result`),
      resultFile: "/tmp/result",
    });
    await bbs.waitForState(guid, TaskState.RUNNING);
    await processJournaled(workDir, guid);
    await cell.kill();
    await bbs.tasks.cancelTask({ taskGuid: guid }); // the cell is away: the BBS completes it alone
    const cancelled = await bbs.waitForState(guid, TaskState.COMPLETED);
    expect(cancelled.failureReason).toBe("task was cancelled");

    cell.start();
    await eventually(
      "the container stopped and removed",
      async () => (await runtime.list(cellLabels(cellId))).length === 0,
      60_000,
      200,
    );
    await eventually(
      "the journal emptied",
      async () => (await readdir(join(workDir, "journal"))).filter((f) => f.endsWith(".json")).length === 0,
      30_000,
      200,
    );
    const t = await bbs.get(guid);
    expect({ failureReason: t?.failureReason, result: t?.result }).toEqual({
      failureReason: "task was cancelled",
      result: "",
    });
  } finally {
    await cell.stop();
    await bbs.stop();
    await removeCellContainers(runtime, cellId);
    await rm(workDir, { recursive: true, force: true });
  }
}, 240_000);

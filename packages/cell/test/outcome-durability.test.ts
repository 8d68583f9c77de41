// The cell never loses a finished task's outcome (docs/reliability.md, "The cell keeps every outcome"):
// tasks finish while the BBS (on real etcd) is stopped for much longer than the old 3 s report budget;
// the outcomes wait in the cell's journal, survive a kill -9 of the cell, and reach the BBS when it is
// back: every task ends COMPLETED with its true result.
import { readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LogLine_Stream, TaskState } from "@diego/proto";
import { eventually } from "@diego/testing";
import { cellLabels } from "../src/executor/labels.js";
import { DockerRuntime } from "../src/runtime/docker-runtime.js";
import { removeCellContainers, uniqueId } from "./support/harness.js";
import { CellProcess, RestartableBbs } from "./support/restartable-bbs.js";

const TASKS = 3;

function task(guid: string, n: number) {
  return {
    taskGuid: guid,
    domain: "d",
    rootFs: "docker:///diego/busybox",
    resultFile: "/tmp/result",
    action: {
      action: {
        case: "run" as const,
        value: {
          path: "/bin/sh",
          // Long enough for the test to stop the BBS while every task still runs.
          args: ["-c", `sleep 4; echo out-${n}; echo err-${n} >&2; printf result-${n} > /tmp/result`],
        },
      },
    },
  };
}

async function journalFiles(workDir: string): Promise<string[]> {
  return (await readdir(join(workDir, "journal")).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
}

async function scenario(restartCellDuringOutage: boolean): Promise<void> {
  const bbs = await RestartableBbs.start();
  const cellId = uniqueId(restartCellDuringOutage ? "journal-restart" : "journal");
  const workDir = join(tmpdir(), `diego-cell-test-${cellId}`);
  const runtime = new DockerRuntime({ helperDir: join(workDir, "helper") });
  const cell = new CellProcess(cellId, bbs.address, workDir);
  try {
    cell.start();
    await bbs.waitForCell(cellId);
    const guids = Array.from({ length: TASKS }, (_, i) => `${cellId}-${i}`);
    for (const [i, g] of guids.entries()) await bbs.tasks.desireTask(task(g, i));
    for (const g of guids) await bbs.waitForState(g, TaskState.RUNNING);

    await bbs.stopBbs();
    const stoppedAt = Date.now();
    // Every task finishes while the BBS is away: its outcome is journaled and its container removed.
    await eventually(
      "every outcome journaled and every container removed",
      async () =>
        (await journalFiles(workDir)).length === TASKS && (await runtime.list(cellLabels(cellId))).length === 0,
      60_000,
      200,
    );
    if (restartCellDuringOutage) {
      await cell.kill();
      cell.start();
    }
    // Well past the old budget (3 attempts within about 3 s) before the BBS is back.
    await new Promise((r) => setTimeout(r, Math.max(0, 8_000 - (Date.now() - stoppedAt))));
    await bbs.startBbs();

    for (const [i, g] of guids.entries()) {
      const t = await bbs.waitForState(g, TaskState.COMPLETED);
      expect({ failed: t.failed, failureReason: t.failureReason, result: t.result }).toEqual({
        failed: false,
        failureReason: "",
        result: `result-${i}`,
      });
      // Measured before the container went: the exit status and what the processes used.
      expect(t.exitStatus).toBe(0);
      expect(t.usage?.peakMemoryBytes).toBeGreaterThan(0n);
      // The last output came with the outcome, stdout and stderr apart (the restarted cell kept it only on disk).
      const lines = [];
      for await (const l of bbs.tasks.taskLogs({ taskGuid: g, follow: false })) lines.push(l);
      expect(lines.map((l) => [l.stream, l.message])).toEqual(
        expect.arrayContaining([
          [LogLine_Stream.STDOUT, `out-${i}`],
          [LogLine_Stream.STDERR, `err-${i}`],
        ]),
      );
      expect(lines.every((l) => l.timestamp > 0n)).toBe(true);
    }
    await eventually("the journal emptied", async () => (await journalFiles(workDir)).length === 0, 30_000, 200);
  } finally {
    await cell.stop();
    await bbs.stop();
    await removeCellContainers(runtime, cellId);
    await rm(workDir, { recursive: true, force: true });
  }
}

test("outcomes wait out a BBS outage and arrive with their true results", () => scenario(false), 240_000);

test("outcomes survive a restart of the cell during the BBS outage", () => scenario(true), 240_000);

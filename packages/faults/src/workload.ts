import { TaskState, type TaskCreateRequest } from "@diego/proto";
import { fixtureTask, uniqueGuid } from "@diego/e2e";
import { eventually } from "@diego/testing";
import type { EffectCounter } from "./effects.js";
import type { FaultCluster } from "./fault-cluster.js";
import type { FinalRecord } from "./judge.js";

export const FAULTS_DOMAIN = "faults";

/** The result a workload task writes: its own guid, so a result can never be taken for another's. */
export function expectedResult(guid: string): string {
  return `result-of-${guid}`;
}

/**
 * A task whose side effects the counter sees: its container calls `start`, sleeps, writes its
 * result, then calls `done`. busybox wget exits non-zero on any error, and `set -e` makes the action
 * fail then, so a `done` always follows a written result.
 */
export function workloadTask(counter: EffectCounter, guid: string, sleepSeconds: number): TaskCreateRequest {
  const script = [
    "set -e",
    `wget -q -O /dev/null '${counter.url("start", guid)}'`,
    `sleep ${sleepSeconds}`,
    `printf '%s' '${expectedResult(guid)}' > /tmp/result`,
    `wget -q -O /dev/null '${counter.url("done", guid)}'`,
  ].join("; ");
  return fixtureTask("hello.json", guid, {
    domain: FAULTS_DOMAIN,
    memory_mb: 32,
    disk_mb: 32,
    action: { run: { path: "/bin/sh", args: ["-c", script] } },
    result_file: "/tmp/result",
    annotation: "fault suite workload",
  });
}

/** Desires tasks through any BBS that answers, retrying each until one accepts it (or it exists). */
export async function submit(
  cluster: FaultCluster,
  counter: EffectCounter,
  prefix: string,
  count: number,
  sleepSeconds: number,
): Promise<string[]> {
  const guids: string[] = [];
  for (let i = 0; i < count; i++) {
    const guid = uniqueGuid(prefix);
    const req = workloadTask(counter, guid, sleepSeconds);
    await eventually(
      `task ${guid} to be desired`,
      async () => {
        try {
          await cluster.tasks.desireTask(req, { timeoutMs: 5_000 });
          return true;
        } catch (err) {
          // A retry after a lost answer finds the task there already.
          if ((err as { code?: string }).code === "ALREADY_EXISTS") return true;
          throw err;
        }
      },
      120_000,
      500,
    );
    guids.push(guid);
  }
  return guids;
}

/** Waits until the receiver has seen every task's action start. */
export function waitStarted(counter: EffectCounter, guids: string[], timeoutMs = 120_000): Promise<boolean> {
  return eventually(
    `${guids.length} tasks to start`,
    () => guids.every((g) => counter.count(g).starts > 0),
    timeoutMs,
    250,
  );
}

/** Reads one task's record; undefined when the BBS has none. Throws while no BBS answers. */
export async function readRecord(cluster: FaultCluster, guid: string): Promise<FinalRecord | undefined> {
  try {
    const t = await cluster.tasks.getTask({ taskGuid: guid }, { timeoutMs: 5_000 });
    return {
      state: TaskState[t.state] ?? String(t.state),
      failed: t.failed,
      failureReason: t.failureReason,
      result: t.result,
      cellId: t.cellId,
    };
  } catch (err) {
    if ((err as { code?: string }).code === "NOT_FOUND") return undefined;
    throw err;
  }
}

/** Reads every record, retrying while no BBS answers, within the deadline. */
export async function readRecords(
  cluster: FaultCluster,
  guids: string[],
  timeoutMs = 60_000,
): Promise<Map<string, FinalRecord | undefined>> {
  const records = new Map<string, FinalRecord | undefined>();
  for (const guid of guids) {
    records.set(
      guid,
      await eventually(`the record of ${guid}`, async () => ({ r: await readRecord(cluster, guid) }), timeoutMs).then(
        (x) => x.r,
      ),
    );
  }
  return records;
}

/** The cell that runs most of the tasks (by their records), so that a fault of it hits the most work. */
export async function busiestCell(cluster: FaultCluster, guids: string[]): Promise<string> {
  const counts = new Map<string, number>();
  for (const [, record] of await readRecords(cluster, guids)) {
    if (record?.cellId) counts.set(record.cellId, (counts.get(record.cellId) ?? 0) + 1);
  }
  const [best] = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (!best) throw new Error("no task names a cell yet");
  return best[0];
}

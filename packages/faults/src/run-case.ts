import { containersOf, EtcdServer } from "@diego/e2e";
import { eventually } from "@diego/testing";
import Docker from "dockerode";
import { EffectCounter } from "./effects.js";
import { FaultCluster, type Timings } from "./fault-cluster.js";
import { HostNetwork } from "./host-network.js";
import { judgeCase, type JudgedTask } from "./judge.js";
import { passed, rowOf, type FaultRow } from "./report.js";
import { expectedResult, readRecord, readRecords, submit } from "./workload.js";

/** What a case starts before its fault. */
export interface CaseSetup {
  bbsCount: number;
  auctioneerCount: number;
  cells: number;
  /** "shared": the test run's etcd; "own": a private one the case may restart; "three": a three-member cluster. */
  etcd: "shared" | "own" | "three";
  /** Cells as hosts of their own in network namespaces (root). */
  network?: boolean;
}

/** What a case's fault gives the harness and the judge. */
export interface CaseContext {
  cluster: FaultCluster;
  counter: EffectCounter;
  network?: HostNetwork;
  /** The etcd members the cluster uses (empty for the shared one). */
  etcd: EtcdServer[];
  timings: Timings;
  /** Every task the case has desired so far. */
  guids(): string[];
  /** Desires `count` workload tasks that sleep `sleepSeconds`; they count in the case. */
  submit(count: number, sleepSeconds: number): Promise<string[]>;
}

export interface FaultOutcome {
  /** When the fault ended (the process restarted or thawed, the cut lifted; a kill that stays: when it happened). */
  endedAt: number;
  /** Cells that really went away (killed, or silent past their TTL): the judge's truth. */
  disappearedCells: string[];
  /** What the table should say about how the fault went (e.g. a step that did not go as planned). */
  notes?: string[];
}

export interface FaultCase {
  name: string;
  /** Runs only with DIEGO_FAULTS=long. */
  long: boolean;
  setup: CaseSetup;
  /** Submits the case's tasks, injects the fault and lifts it. */
  run(ctx: CaseContext): Promise<FaultOutcome>;
}

export interface CaseResult {
  row: FaultRow;
  /** Service logs when the case did not pass, for the failure message. */
  logs: string;
}

const FINAL_WAIT_MS = 150_000;

/**
 * Runs one case end to end on a fresh cluster: setup, the case's tasks and fault, then waits for every
 * task to be final and a new task to complete (the recovery time), reads the records back, judges them
 * against the receiver's counts, and removes everything it made (processes, containers, namespaces).
 */
export async function runCase(fault: FaultCase, timings: Timings): Promise<CaseResult> {
  const counter = await new EffectCounter().listen();
  const etcd: EtcdServer[] = [];
  let network: HostNetwork | undefined;
  let cluster: FaultCluster | undefined;
  const guids: string[] = [];
  const phaseSeconds: Record<string, number> = {};
  let phaseStart = Date.now();
  const phase = (name: string) => {
    phaseSeconds[name] = (Date.now() - phaseStart) / 1000;
    phaseStart = Date.now();
  };
  let row: FaultRow | undefined;
  try {
    if (fault.setup.etcd === "own") etcd.push(await EtcdServer.start());
    if (fault.setup.etcd === "three") etcd.push(...(await EtcdServer.startCluster(3)));
    const shared = process.env.DIEGO_TEST_ETCD;
    const endpoints = etcd.length ? etcd.map((e) => e.url) : shared ? [shared] : [];
    if (!endpoints.length) throw new Error("no etcd: run under the jest global setup or set DIEGO_TEST_ETCD");
    if (fault.setup.network) network = await HostNetwork.create();
    const slug = fault.name.replace(/[^a-z0-9]+/gi, "-").toLowerCase();
    const cellIds = Array.from({ length: fault.setup.cells }, (_, i) => `f${process.pid}-${slug.slice(0, 20)}-${i}`);
    cluster = await FaultCluster.start({
      etcdEndpoints: endpoints,
      bbsCount: fault.setup.bbsCount,
      auctioneerCount: fault.setup.auctioneerCount,
      cellIds,
      network,
      timings,
    });
    phase("boot");
    const c = cluster;
    const ctx: CaseContext = {
      cluster: c,
      counter,
      network,
      etcd,
      timings,
      guids: () => [...guids],
      submit: async (count, sleepSeconds) => {
        const more = await submit(c, counter, slug.slice(0, 24), count, sleepSeconds);
        guids.push(...more);
        return more;
      },
    };
    const outcome = await fault.run(ctx);
    phase("fault");
    const recoverySeconds = await recover(c, counter, guids, outcome.endedAt);
    const records = await readRecords(c, guids);
    const judged: JudgedTask[] = guids.map((guid) => ({
      guid,
      expectedResult: expectedResult(guid),
      effects: counter.count(guid),
      record: records.get(guid),
    }));
    const summary = judgeCase(judged, { disappearedCells: new Set(outcome.disappearedCells) });
    phase("recovery");
    row = rowOf(fault.name, summary, recoverySeconds, outcome.notes);
    return { row, logs: passed(row) ? "" : c.logs() };
  } catch (err) {
    row = rowOf(fault.name, judgeCase([], { disappearedCells: new Set() }), null, [
      `the case did not run to the end: ${(err as Error).message}`,
    ]);
    row.tasks = guids.length;
    return { row, logs: cluster?.logs() ?? "" };
  } finally {
    phaseStart = Date.now();
    await cluster?.stop().catch(() => undefined);
    await removeContainers(guids);
    await network?.destroy();
    for (const e of etcd) await e.remove().catch(() => undefined);
    await counter.close();
    phase("teardown");
    if (row) row.phaseSeconds = phaseSeconds;
  }
}

/**
 * Seconds from the end of the fault until every task of the case is final (COMPLETED) and a task
 * desired after the fault has completed with its result; null when that does not happen in time.
 */
async function recover(
  cluster: FaultCluster,
  counter: EffectCounter,
  guids: string[],
  endedAt: number,
): Promise<number | null> {
  const deadline = endedAt + FINAL_WAIT_MS;
  const remaining = () => Math.max(1_000, deadline - Date.now());
  try {
    const [probe] = await submit(cluster, counter, "probe", 1, 0);
    await eventually(
      "the probe task to complete",
      async () => {
        const r = await readRecord(cluster, probe!);
        return r?.state === "COMPLETED" && !r.failed && r.result === expectedResult(probe!);
      },
      remaining(),
      250,
    );
    await eventually(
      "every task of the case to be final",
      async () => {
        for (const guid of guids) {
          const r = await readRecord(cluster, guid);
          if (r && r.state !== "COMPLETED") return false;
        }
        return true;
      },
      remaining(),
      500,
    );
    return (Date.now() - endedAt) / 1000;
  } catch {
    return null;
  }
}

/** Removes any container of the case's tasks that a killed cell left behind. */
async function removeContainers(guids: string[]): Promise<void> {
  const docker = new Docker();
  for (const guid of guids) {
    for (const info of await containersOf(guid).catch(() => [])) {
      await docker
        .getContainer(info.Id)
        .remove({ force: true })
        .catch(() => undefined);
    }
  }
}

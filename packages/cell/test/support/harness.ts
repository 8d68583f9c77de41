import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InProcessCluster as Cluster } from "@diego/testing";
import type { CellConfig, RunningCell } from "../../src/index.js";
import { cellLabels } from "../../src/executor/labels.js";
import type { ContainerRuntime, ContainerSpec } from "../../src/runtime/container-runtime.js";
import { DockerRuntime } from "../../src/runtime/docker-runtime.js";
import { FakeRuntime } from "../../src/runtime/fake-runtime.js";
import { TcpGate } from "./tcp-gate.js";

export interface Harness {
  /** The real BBS and auctioneer the cell works with. */
  cluster: Cluster;
  cell: RunningCell;
  cellId: string;
  config: CellConfig;
  runtime: ContainerRuntime;
  /** With `bbsGate`: the cell reaches the BBS through this gate, which a test can cut. */
  bbsGate?: TcpGate;
  /** Stops the cell (and the cluster when it started it), removes every container of the cell and its work dir. */
  stop(): Promise<void>;
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** A container of diego/busybox with no env, no limits and no network, named uniquely; `over` changes it. */
export function containerSpec(over: Partial<ContainerSpec> = {}): ContainerSpec {
  return {
    name: uniqueId("diego-test"),
    image: "diego/busybox:latest",
    labels: {},
    env: [],
    memoryMb: 0,
    diskMb: 0,
    cpuShares: 0,
    maxPids: 0,
    privileged: false,
    network: false,
    ...over,
  };
}

/** A cell (on Docker, or on the fake runtime) in a cluster of the real BBS and auctioneer (its own unless given one). */
export async function startHarness(
  kind: "docker" | "fake",
  values: Partial<CellConfig> = {},
  options: { runtime?: ContainerRuntime; cluster?: Cluster; cellId?: string; bbsGate?: boolean } = {},
): Promise<Harness> {
  const cellId = options.cellId ?? uniqueId("test-cell");
  const cluster = options.cluster ?? (await Cluster.start());
  let bbsGate: TcpGate | undefined;
  let cell: RunningCell | undefined;
  const stopAll = async () => {
    bbsGate?.restore(); // the draining cell deregisters through it
    await cell?.();
    await bbsGate?.close();
    if (!options.cluster) await cluster.stop();
  };
  try {
    if (options.bbsGate) bbsGate = await TcpGate.start(cluster.address);
  } catch (err) {
    await stopAll();
    throw err;
  }
  const workDir = join(tmpdir(), `diego-cell-test-${cellId}`);
  const runtime =
    options.runtime ??
    (kind === "fake" ? new FakeRuntime() : new DockerRuntime({ helperDir: join(workDir, "helper") }));
  let config: CellConfig;
  try {
    const started = await cluster.startCell(
      { cellId, workDir, bbsAddress: bbsGate?.address ?? cluster.address, allowPrivileged: true, ...values },
      kind === "fake" ? { runtime } : { docker: true },
    );
    cell = started.running;
    config = started.config;
  } catch (err) {
    await stopAll();
    await rm(workDir, { recursive: true, force: true });
    throw err;
  }
  return {
    cluster,
    cell,
    cellId,
    config,
    runtime,
    bbsGate,
    stop: async () => {
      await stopAll();
      await removeCellContainers(runtime, cellId);
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

export async function removeCellContainers(runtime: ContainerRuntime, cellId: string): Promise<void> {
  for (const c of await runtime.list(cellLabels(cellId))) await runtime.remove(c.id);
}

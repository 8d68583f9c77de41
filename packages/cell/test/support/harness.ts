import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger } from "@diego/kit";
import { cellConfig, startCell, type CellConfig, type RunningCell } from "../../src/index.js";
import { cellLabels } from "../../src/executor/labels.js";
import type { ContainerRuntime } from "../../src/runtime/container-runtime.js";
import { DockerRuntime } from "../../src/runtime/docker-runtime.js";
import { FakeRuntime } from "../../src/runtime/fake-runtime.js";
import { Cluster } from "./cluster.js";
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
  const config = cellConfig({
    cellId,
    listenAddress: "127.0.0.1:0",
    statusAddress: "127.0.0.1:0",
    bbsAddress: bbsGate?.address ?? cluster.address,
    memoryMb: 4096,
    diskMb: 8192,
    workDir: join(tmpdir(), `diego-cell-test-${cellId}`),
    logLevel: process.env.DIEGO_TEST_LOG ?? "silent",
    gracefulShutdownInterval: 1000,
    drainTimeout: 2000,
    allowPrivileged: true,
    ...values,
  });
  const runtime =
    options.runtime ??
    (kind === "fake" ? new FakeRuntime() : new DockerRuntime({ helperDir: join(config.workDir!, "helper") }));
  try {
    cell = await startCell(config, {
      runtime: kind === "fake" ? runtime : undefined,
      logger: createLogger("cell", config.logLevel),
    });
    await cluster.waitForCell(cellId, cell.address);
  } catch (err) {
    await stopAll();
    await rm(config.workDir!, { recursive: true, force: true });
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
      await rm(config.workDir!, { recursive: true, force: true });
    },
  };
}

export async function removeCellContainers(runtime: ContainerRuntime, cellId: string): Promise<void> {
  for (const c of await runtime.list(cellLabels(cellId))) await runtime.remove(c.id);
}

export async function eventually<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  what = "condition",
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

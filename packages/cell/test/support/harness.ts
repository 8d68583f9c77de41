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
import { FakeBbs } from "./fake-bbs.js";

export interface Harness {
  bbs: FakeBbs;
  cell: RunningCell;
  cellId: string;
  config: CellConfig;
  runtime: ContainerRuntime;
  /** Stops the cell and the BBS, removes every container of the cell and its work dir. */
  stop(): Promise<void>;
}

export function uniqueId(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** A cell (on Docker, or on the fake runtime) and a fake BBS it talks to. */
export async function startHarness(
  kind: "docker" | "fake",
  values: Partial<CellConfig> = {},
  options: { runtime?: ContainerRuntime; bbs?: FakeBbs; cellId?: string } = {},
): Promise<Harness> {
  const cellId = options.cellId ?? uniqueId("test-cell");
  const bbs = options.bbs ?? (await FakeBbs.start());
  const config = cellConfig({
    cellId,
    listenAddress: "127.0.0.1:0",
    statusAddress: "127.0.0.1:0",
    bbsAddress: bbs.address,
    memoryMb: 4096,
    diskMb: 8192,
    workDir: join(tmpdir(), `diego-cell-test-${cellId}`),
    logLevel: process.env.DIEGO_TEST_LOG ?? "silent",
    gracefulShutdownInterval: 1000,
    drainTimeout: 2000,
    ...values,
  });
  const runtime =
    options.runtime ?? (kind === "fake" ? new FakeRuntime() : new DockerRuntime({ helperDir: join(config.workDir!, "helper") }));
  const cell = await startCell(config, { runtime: kind === "fake" ? runtime : undefined, logger: createLogger("cell", config.logLevel) });
  await bbs.waitForCell(cellId);
  return {
    bbs,
    cell,
    cellId,
    config,
    runtime,
    stop: async () => {
      await cell();
      if (!options.bbs) await bbs.stop();
      await removeCellContainers(runtime, cellId);
      await rm(config.workDir!, { recursive: true, force: true });
    },
  };
}

export async function removeCellContainers(runtime: ContainerRuntime, cellId: string): Promise<void> {
  for (const c of await runtime.list(cellLabels(cellId))) await runtime.remove(c.id);
}

export async function eventually<T>(fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000, what = "condition"): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

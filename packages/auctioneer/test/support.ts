import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBbs, type RunningBbs } from "@diego/bbs";
import { cellConfig, FakeRuntime, startCell, type CellConfig, type RunningCell } from "@diego/cell";
import { createClient, type ServiceClient } from "@diego/kit";
import { DiegoError } from "@diego/models";
import { CellService, cellv1, LockService, TaskLifecycleService, TaskService, type Task } from "@diego/proto";
import { eventually, GrpcFaultProxy } from "@diego/testing";
import { pino } from "pino";
import { auctioneerConfig, startAuctioneer, type AuctioneerConfig, type AuctioneerHandle } from "../src/index.js";

export const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Quick timings for tests. */
export const FAST: Partial<AuctioneerConfig> = {
  lockTtl: 1_500,
  lockRetryInterval: 100,
  retryInterval: 100,
  maxRetryInterval: 400,
  cellListInterval: 200,
  cellStateTimeout: 1_000,
  communicationTimeout: 3_000,
};

/** A real cell (fake runtime), reached by the auctioneer and the BBS through its own fault proxy. */
export interface TestCell {
  cellId: string;
  running: RunningCell;
  /** CellRepService in front of the cell: the address the cell advertises. */
  proxy: GrpcFaultProxy;
  workDir: string;
}

export interface Cluster {
  bbs: RunningBbs;
  /** The auctioneers reach the BBS through this (CellService, TaskLifecycleService, LockService). */
  bbsProxy: GrpcFaultProxy;
  tasks: ServiceClient<(typeof TaskService)["method"]>;
  cells: Map<string, TestCell>;
  auctioneers: AuctioneerHandle[];
  startAuctioneer(over?: Partial<AuctioneerConfig>): Promise<AuctioneerHandle>;
  addCell(cellId: string, over?: Partial<CellConfig>): Promise<TestCell>;
  desire(guid: string, over?: Record<string, unknown>): Promise<void>;
  get(guid: string): Promise<Task | undefined>;
  /** Waits until the task satisfies `ok`; returns it. */
  until(guid: string, what: string, ok: (t: Task | undefined) => boolean): Promise<Task | undefined>;
  /** Cell id of each placed task among `guids` (claimed or further). */
  placements(guids: readonly string[]): Promise<Map<string, string>>;
  /** The address in the `auctioneer` lock, if someone holds it. */
  activeAuctioneer(): Promise<string | undefined>;
  stop(): Promise<void>;
}

/** The real BBS (memory store), real cells on the fake runtime, and auctioneers started in-process. */
export async function cluster(cells: [string, Partial<CellConfig>?][] = []): Promise<Cluster> {
  const bbs = await startBbs(
    {
      store: "memory",
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      logLevel: "silent",
      // Pending tasks go to the auctioneer again every pass.
      convergeRepeatInterval: 1_000,
    },
    { logger },
  );
  const bbsProxy = await GrpcFaultProxy.start(bbs.address, [CellService, TaskLifecycleService, LockService]);
  const tasks = createClient(TaskService, bbs.address);
  const locks = createClient(LockService, bbs.address);
  const c: Cluster = {
    bbs,
    bbsProxy,
    tasks,
    cells: new Map(),
    auctioneers: [],
    async startAuctioneer(over = {}) {
      const a = await startAuctioneer(
        auctioneerConfig({
          ...FAST,
          listenAddress: "127.0.0.1:0",
          statusAddress: "127.0.0.1:0",
          bbsAddress: bbsProxy.address,
          ...over,
        }),
        { logger },
      );
      c.auctioneers.push(a);
      return a;
    },
    async addCell(cellId, over = {}) {
      const proxy = await GrpcFaultProxy.start("127.0.0.1:1", [cellv1.CellRepService]);
      const workDir = join(tmpdir(), `diego-auctioneer-test-${cellId}-${randomBytes(4).toString("hex")}`);
      const running = await startCell(
        cellConfig({
          cellId,
          listenAddress: "127.0.0.1:0",
          statusAddress: "127.0.0.1:0",
          advertiseAddress: proxy.address,
          bbsAddress: bbs.address,
          memoryMb: 4096,
          diskMb: 8192,
          workDir,
          logLevel: "silent",
          gracefulShutdownInterval: 500,
          drainTimeout: 1_000,
          ...over,
        }),
        { runtime: new FakeRuntime(), logger },
      );
      proxy.retarget(running.address);
      const cell = { cellId, running, proxy, workDir };
      c.cells.set(cellId, cell);
      return cell;
    },
    async desire(guid, over = {}) {
      await tasks.desireTask({
        taskGuid: guid,
        domain: "test",
        rootFs: "docker:///diego/busybox",
        memoryMb: 64,
        diskMb: 64,
        action: { action: { case: "run", value: { path: "/bin/sh", args: ["-c", "sleep 600"] } } },
        ...over,
      });
    },
    async get(guid) {
      try {
        return await tasks.getTask({ taskGuid: guid });
      } catch (err) {
        if (DiegoError.is(err, "NOT_FOUND")) return undefined;
        throw err;
      }
    },
    async until(guid, what, ok) {
      let task: Task | undefined;
      await eventually(`task ${guid}: ${what}`, async () => ok((task = await c.get(guid))), 30_000, 50);
      return task;
    },
    async placements(guids) {
      const out = new Map<string, string>();
      for (const g of guids) {
        const t = await c.get(g);
        if (t?.cellId) out.set(g, t.cellId);
      }
      return out;
    },
    async activeAuctioneer() {
      return (await locks.fetchLock({ key: "auctioneer" }).catch(() => undefined))?.value;
    },
    async stop() {
      await Promise.all(c.auctioneers.map((a) => a.stop()));
      await Promise.all(
        [...c.cells.values()].map(async (cell) => {
          await cell.running.crash();
          await cell.proxy.stop();
          // A crashed cell's last journal write may still land while the directory goes: rm retries.
          await rm(cell.workDir, { force: true, recursive: true, maxRetries: 5, retryDelay: 100 });
        }),
      );
      tasks.close();
      locks.close();
      await bbsProxy.stop();
      await bbs.stop();
    },
  };
  for (const [id, over] of cells) await c.addCell(id, over);
  return c;
}

/** Starts an auctioneer and waits until it holds the lock. */
export async function active(c: Cluster, over: Partial<AuctioneerConfig> = {}): Promise<AuctioneerHandle> {
  const a = await c.startAuctioneer(over);
  await eventually("the auctioneer to hold the lock", () => a.isActive(), 30_000, 50);
  return a;
}

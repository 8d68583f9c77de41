import { SimulatedCell, type SimulatedCellConfig } from "@diego/auction";
import { pino } from "pino";
import { auctioneerConfig, startAuctioneer, type AuctioneerConfig, type AuctioneerHandle } from "../src/index.js";
import { FakeBbs, SimulatedCellServers } from "../src/sim/index.js";

export const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });

/** Polls until `check` is true; fails with `what` after the deadline (generous: the machine is slow and shared). */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Quick timings for tests. */
export const FAST: Partial<AuctioneerConfig> = {
  lockTtl: 1_500,
  lockRetryInterval: 100,
  retryInterval: 100,
  cellStateTimeout: 1_000,
  communicationTimeout: 3_000,
};

export interface Cluster {
  bbs: FakeBbs;
  cells: SimulatedCellServers;
  auctioneers: AuctioneerHandle[];
  startAuctioneer(over?: Partial<AuctioneerConfig>): Promise<AuctioneerHandle>;
  addCells(configs: SimulatedCellConfig[]): Promise<void>;
  stop(): Promise<void>;
}

/** A fake BBS, simulated cells over gRPC that claim what they accept, and auctioneers started in-process. */
export async function cluster(cellConfigs: SimulatedCellConfig[]): Promise<Cluster> {
  const bbs = new FakeBbs({ logger });
  await bbs.start();
  const cells = new SimulatedCellServers({
    logger,
    onAccepted: (cellId, tasks) => tasks.forEach((t) => bbs.claim(t.taskGuid, cellId)),
  });
  const c: Cluster = {
    bbs,
    cells,
    auctioneers: [],
    async startAuctioneer(over = {}) {
      const a = await startAuctioneer(
        auctioneerConfig({
          ...FAST,
          listenAddress: "127.0.0.1:0",
          statusAddress: "127.0.0.1:0",
          bbsAddress: bbs.address,
          ...over,
        }),
        { logger },
      );
      c.auctioneers.push(a);
      return a;
    },
    async addCells(configs) {
      await cells.add(configs.map((cfg) => new SimulatedCell(cfg)));
      bbs.cells = cells.presences();
    },
    async stop() {
      await Promise.all(c.auctioneers.map((a) => a.stop()));
      await cells.stop();
      await bbs.stop();
    },
  };
  await c.addCells(cellConfigs);
  return c;
}

export const cellConfig = (cellId: string, over: Partial<SimulatedCellConfig> = {}): SimulatedCellConfig => ({
  cellId,
  stacks: ["cflinuxfs4"],
  rootfsProviders: [
    { scheme: "docker", names: [] },
    { scheme: "preloaded", names: ["busybox"] },
  ],
  total: { memoryMb: 4096, diskMb: 8192, containers: 100 },
  ...over,
});

export const work = (taskGuid: string, over: Record<string, unknown> = {}) => ({
  taskGuid,
  domain: "test",
  rootFs: "docker:///diego/busybox",
  placementTags: [] as string[],
  memoryMb: 64,
  diskMb: 64,
  ...over,
});

import { eventually } from "@diego/testing";
import type { CaseContext, FaultCase, FaultOutcome } from "./run-case.js";
import { busiestCell, waitStarted } from "./workload.js";

const FREEZE_MS = 20_000;
const TASKS = 6;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Submits the case's tasks and waits until every one of them runs; returns the cell running most. */
async function startWork(ctx: CaseContext, count = TASKS, sleepSeconds = 8): Promise<string> {
  const guids = await ctx.submit(count, sleepSeconds);
  await waitStarted(ctx.counter, guids);
  return busiestCell(ctx.cluster, guids);
}

async function leadingBbs(ctx: CaseContext): Promise<number> {
  return eventually("a leading BBS", () => ctx.cluster.leadingBbs(), 30_000);
}

async function activeAuctioneer(ctx: CaseContext): Promise<number> {
  return eventually("an active auctioneer", () => ctx.cluster.activeAuctioneer(), 30_000);
}

const oneOfEach = { bbsCount: 1, auctioneerCount: 1, cells: 2, etcd: "shared" } as const;

export const FAULT_CASES: FaultCase[] = [
  {
    name: "cell SIGKILL, restarted after 2 s",
    long: false,
    setup: oneOfEach,
    async run(ctx): Promise<FaultOutcome> {
      const victim = await startWork(ctx);
      await ctx.cluster.cell(victim).process.stop("SIGKILL");
      await sleep(2_000);
      await ctx.cluster.restartCell(victim);
      return { endedAt: Date.now(), disappearedCells: [victim] };
    },
  },
  {
    name: "cell SIGSTOP 20 s",
    long: true,
    setup: oneOfEach,
    async run(ctx): Promise<FaultOutcome> {
      const victim = await startWork(ctx);
      const cell = ctx.cluster.cell(victim).process;
      cell.signal("SIGSTOP");
      await sleep(FREEZE_MS);
      cell.signal("SIGCONT");
      // Silent for longer than its presence TTL: from the BBS, it went away.
      return { endedAt: Date.now(), disappearedCells: [victim] };
    },
  },
  {
    name: "leading BBS SIGKILL (of two)",
    long: false,
    setup: { ...oneOfEach, bbsCount: 2 },
    async run(ctx): Promise<FaultOutcome> {
      await startWork(ctx, TASKS / 2);
      const leader = await leadingBbs(ctx);
      await ctx.cluster.bbs[leader]!.process.stop("SIGKILL");
      const endedAt = Date.now();
      // Work desired after the kill goes through the survivor.
      await waitStarted(ctx.counter, await ctx.submit(TASKS / 2, 4));
      return { endedAt, disappearedCells: [] };
    },
  },
  {
    name: "leading BBS SIGSTOP 20 s (of two)",
    long: true,
    setup: { ...oneOfEach, bbsCount: 2 },
    async run(ctx): Promise<FaultOutcome> {
      await startWork(ctx, TASKS / 2);
      const leader = ctx.cluster.bbs[await leadingBbs(ctx)]!.process;
      leader.signal("SIGSTOP");
      const thawAt = Date.now() + FREEZE_MS;
      await ctx.submit(TASKS / 2, 4);
      await sleep(Math.max(0, thawAt - Date.now()));
      leader.signal("SIGCONT");
      return { endedAt: Date.now(), disappearedCells: [] };
    },
  },
  {
    name: "active auctioneer SIGKILL (of two)",
    long: false,
    setup: { ...oneOfEach, auctioneerCount: 2 },
    async run(ctx): Promise<FaultOutcome> {
      await startWork(ctx, TASKS / 2);
      const active = await activeAuctioneer(ctx);
      await ctx.cluster.auctioneers[active]!.process.stop("SIGKILL");
      const endedAt = Date.now();
      // Work desired after the kill must be placed by the standby.
      await waitStarted(ctx.counter, await ctx.submit(TASKS / 2, 4));
      return { endedAt, disappearedCells: [] };
    },
  },
  {
    name: "active auctioneer SIGSTOP 20 s (of two)",
    long: true,
    setup: { ...oneOfEach, auctioneerCount: 2 },
    async run(ctx): Promise<FaultOutcome> {
      await startWork(ctx, TASKS / 2);
      const active = ctx.cluster.auctioneers[await activeAuctioneer(ctx)]!.process;
      active.signal("SIGSTOP");
      const thawAt = Date.now() + FREEZE_MS;
      await ctx.submit(TASKS / 2, 4);
      await sleep(Math.max(0, thawAt - Date.now()));
      active.signal("SIGCONT");
      return { endedAt: Date.now(), disappearedCells: [] };
    },
  },
  {
    name: "BBS down 20 s while tasks finish, cell restarted in the outage",
    long: true,
    setup: oneOfEach,
    async run(ctx): Promise<FaultOutcome> {
      const victim = await startWork(ctx, TASKS, 4);
      const bbs = ctx.cluster.bbs[0]!.process;
      await bbs.stop("SIGKILL");
      const backAt = Date.now() + FREEZE_MS;
      // Every task finishes while the BBS is down (the receiver sees it), then the busiest cell is
      // restarted cleanly: the outcomes it holds must survive both.
      await eventually("every task to finish in the outage", () => allDone(ctx), FREEZE_MS, 250).catch(() => undefined);
      const notes: string[] = [];
      if (!allDone(ctx)) notes.push("not every task finished before the cell restart");
      const cell = ctx.cluster.cell(victim).process;
      const stopStarted = Date.now();
      await cell.stop("SIGTERM", 10_000);
      const stopSeconds = (Date.now() - stopStarted) / 1000;
      // ServiceProcess.stop sends SIGKILL once the timeout passes.
      if (stopSeconds >= 10) notes.push(`the cell did not stop on SIGTERM within 10 s and was killed`);
      await ctx.cluster.restartCell(victim, { waitReady: false });
      await sleep(Math.max(0, backAt - Date.now()));
      await ctx.cluster.restartBbs(0);
      // Nothing went away: the tasks finished, and the cell came back.
      return { endedAt: Date.now(), disappearedCells: [], notes };
    },
  },
  {
    name: "etcd restarted while tasks finish",
    long: false,
    setup: { ...oneOfEach, etcd: "own" },
    async run(ctx): Promise<FaultOutcome> {
      await startWork(ctx, TASKS, 4);
      const etcd = ctx.etcd[0]!;
      await etcd.stop();
      // Down until every task has finished (the receiver sees it) and a little longer, so that
      // every outcome is reported while etcd is away.
      const notes: string[] = [];
      await eventually("every task to finish while etcd is down", () => allDone(ctx), 30_000, 250).catch(() =>
        notes.push("not every task finished while etcd was down"),
      );
      await sleep(2_000);
      await etcd.resume();
      return { endedAt: Date.now(), disappearedCells: [], notes };
    },
  },
  {
    name: "etcd leader killed (of three members)",
    long: true,
    setup: { ...oneOfEach, etcd: "three" },
    async run(ctx): Promise<FaultOutcome> {
      await startWork(ctx, TASKS / 2, 6);
      const leader = await eventually(
        "an etcd leader",
        async () => {
          for (const m of ctx.etcd) if (await m.isLeader()) return m;
          return undefined;
        },
        30_000,
      );
      await leader.kill();
      const endedAt = Date.now();
      await waitStarted(ctx.counter, await ctx.submit(TASKS / 2, 4));
      return { endedAt, disappearedCells: [] };
    },
  },
  {
    name: "cell cut off from the BBS for 1/2 TTL",
    long: false,
    setup: { ...oneOfEach, network: true },
    async run(ctx): Promise<FaultOutcome> {
      const victim = await startWork(ctx);
      const host = ctx.cluster.cell(victim).host!;
      await ctx.network!.cut(host);
      await sleep(ctx.timings.presenceTtlMs / 2);
      await ctx.network!.heal(host);
      // Back within its TTL: it never went away.
      return { endedAt: Date.now(), disappearedCells: [] };
    },
  },
  {
    name: "cell cut off from the BBS for 3 TTL",
    long: true,
    setup: { ...oneOfEach, network: true },
    async run(ctx): Promise<FaultOutcome> {
      const victim = await startWork(ctx, TASKS, 10);
      const host = ctx.cluster.cell(victim).host!;
      await ctx.network!.cut(host);
      await sleep(ctx.timings.presenceTtlMs * 3);
      await ctx.network!.heal(host);
      // Silent for longer than its presence TTL: from the BBS, it went away.
      return { endedAt: Date.now(), disappearedCells: [victim] };
    },
  },
];

function allDone(ctx: CaseContext): boolean {
  return ctx.guids().every((g) => ctx.counter.count(g).dones > 0);
}

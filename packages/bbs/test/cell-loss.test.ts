import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { createClient } from "@diego/kit";
import { CellRegistryService, TaskLifecycleService, TaskService, TaskState } from "@diego/proto";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { startBbs, type RunningBbs } from "../src/start-bbs.js";
import { connect, etcdUrl, silent, uniquePrefix, waitFor, wipe } from "./support/etcd.js";
import { fakeAuctioneer } from "./support/fake-services.js";
import { taskRequest } from "./support/tasks.js";

const TTL = 2_000;
const suffix = Math.random().toString(36).slice(2, 8);

/** A TCP proxy in front of the BBS whose connections can all be reset for a while. */
async function resettableProxy(target: string) {
  const [host, port] = [target.slice(0, target.lastIndexOf(":")), Number(target.slice(target.lastIndexOf(":") + 1))];
  const sockets = new Set<Socket>();
  let cut = false;
  const server: Server = createServer((inbound) => {
    if (cut) return void inbound.resetAndDestroy();
    const outbound = tcpConnect(port, host);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    address,
    /** Resets every connection, and every new one until restore(). */
    cut() {
      cut = true;
      for (const s of sockets) s.resetAndDestroy();
    },
    restore() {
      cut = false;
    },
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

interface Harness {
  bbs: RunningBbs;
  etcd: EtcdConnection;
  prefix: string;
  stop(): Promise<void>;
}

async function harness(overrides: { cellLossHoldMax?: number } = {}): Promise<Harness> {
  const etcd = await connect();
  const prefix = uniquePrefix("cell-loss");
  const auctioneer = await fakeAuctioneer();
  const bbs = await startBbs(
    {
      etcdEndpoints: [etcdUrl()],
      etcdPrefix: prefix,
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      auctioneerAddress: auctioneer.address,
      // Only the presence watch can fail tasks for a lost cell within these tests.
      convergeRepeatInterval: 120_000,
      cellPresenceTtl: TTL,
      cellLossHoldMax: overrides.cellLossHoldMax ?? 30_000,
      lockTtl: 2_000,
    },
    { logger: silent },
  );
  await waitFor("leadership", () => bbs.isLeader());
  return {
    bbs,
    etcd,
    prefix,
    async stop() {
      await bbs.stop();
      await auctioneer.stop();
      await wipe(etcd, prefix);
      await etcd.close();
    },
  };
}

/** A cell, as the BBS sees one: heartbeats every third of its TTL and reports its tasks, through `address`. */
function simulatedCell(cellId: string, address: string) {
  const registry = createClient(CellRegistryService, address, { defaultTimeoutMs: 1_000 });
  const lifecycle = createClient(TaskLifecycleService, address, { defaultTimeoutMs: 1_000 });
  const beat = () => registry.heartbeat({ cell: { cellId, address: "127.0.0.1:1" }, ttlMs: BigInt(TTL) });
  const timer = setInterval(() => void beat().catch(() => undefined), TTL / 3);
  return {
    cellId,
    lifecycle,
    ready: beat(),
    /** Completes a task, retrying until the BBS answers (as a cell keeps an outcome until acknowledged). */
    async complete(taskGuid: string) {
      await waitFor(`completion of ${taskGuid}`, () =>
        lifecycle.completeTask({ taskGuid, cellId, result: "done" }).then(
          () => true,
          () => false,
        ),
      );
    },
    stop() {
      clearInterval(timer);
      registry.close();
      lifecycle.close();
    },
  };
}

async function runningOn(bbs: RunningBbs, cell: ReturnType<typeof simulatedCell>): Promise<string> {
  const tasks = createClient(TaskService, bbs.address);
  try {
    const req = taskRequest({ domain: "cell-loss" });
    await tasks.desireTask(req);
    await cell.lifecycle.startTask({ taskGuid: req.taskGuid, cellId: cell.cellId });
    await cell.lifecycle.runningTask({ taskGuid: req.taskGuid, cellId: cell.cellId });
    return req.taskGuid;
  } finally {
    tasks.close();
  }
}

async function stateOf(bbs: RunningBbs, guid: string) {
  const tasks = createClient(TaskService, bbs.address);
  try {
    return await tasks.getTask({ taskGuid: guid });
  } finally {
    tasks.close();
  }
}

async function metric(bbs: RunningBbs, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://${bbs.statusAddress}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? NaN);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("one cell of three goes silent: its tasks fail `cell disappeared before completion` soon after its TTL, not at the next convergence pass", async () => {
  const h = await harness();
  const cells = ["a", "b", "c"].map((n) => simulatedCell(`lone-${n}-${suffix}`, h.bbs.address));
  try {
    await Promise.all(cells.map((c) => c.ready));
    const guids = await Promise.all(cells.map((c) => runningOn(h.bbs, c)));
    // Past the start's recovery TTL, so the presence watch alone decides.
    await sleep(TTL);
    cells[2].stop();
    const failed = await waitFor(
      "the silent cell's task to fail",
      async () => {
        const t = await stateOf(h.bbs, guids[2]);
        return t.state === TaskState.COMPLETED && t;
      },
      30_000,
    );
    expect(failed).toMatchObject({ failed: true, failureReason: "cell disappeared before completion" });
    for (const g of guids.slice(0, 2)) expect((await stateOf(h.bbs, g)).state).toBe(TaskState.RUNNING);
  } finally {
    for (const c of cells) c.stop();
    await h.stop();
  }
}, 60_000);

test("every connection to the BBS reset for several TTLs: no cell is declared lost, and every task completes with its result", async () => {
  const h = await harness();
  const proxy = await resettableProxy(h.bbs.address);
  const cells = ["x", "y"].map((n) => simulatedCell(`cut-${n}-${suffix}`, proxy.address));
  try {
    await Promise.all(cells.map((c) => c.ready));
    const guids: [ReturnType<typeof simulatedCell>, string][] = [];
    for (const c of cells) for (let i = 0; i < 4; i++) guids.push([c, await runningOn(h.bbs, c)]);
    await sleep(TTL);
    proxy.cut();
    // Both presence records expire; the BBS holds the cells instead of failing their tasks.
    await waitFor(
      "both cells held",
      async () => (await metric(h.bbs, /^CellsHeld\{[^}]*reason="mass-silence"[^}]*\} (\d+)/m)) === 2,
      20_000,
    );
    await sleep(3 * TTL);
    for (const [, g] of guids) expect((await stateOf(h.bbs, g)).state).toBe(TaskState.RUNNING);
    proxy.restore();
    await Promise.all(guids.map(([c, g]) => c.complete(g)));
    for (const [, g] of guids) {
      expect(await stateOf(h.bbs, g)).toMatchObject({ state: TaskState.COMPLETED, failed: false, result: "done" });
    }
  } finally {
    for (const c of cells) c.stop();
    await proxy.close();
    await h.stop();
  }
}, 90_000);

test("a mass silence is held at most cell_loss_hold_max: then the silent cells' tasks fail", async () => {
  const h = await harness({ cellLossHoldMax: 4_000 });
  const cells = ["p", "q"].map((n) => simulatedCell(`bound-${n}-${suffix}`, h.bbs.address));
  try {
    await Promise.all(cells.map((c) => c.ready));
    const guids = await Promise.all(cells.map((c) => runningOn(h.bbs, c)));
    await sleep(TTL);
    for (const c of cells) c.stop();
    for (const g of guids) {
      const t = await waitFor(
        "the task to fail after the hold",
        async () => {
          const task = await stateOf(h.bbs, g);
          return task.state === TaskState.COMPLETED && task;
        },
        30_000,
      );
      expect(t.failureReason).toBe("cell disappeared before completion");
    }
  } finally {
    for (const c of cells) c.stop();
    await h.stop();
  }
}, 60_000);

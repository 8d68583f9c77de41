import { create } from "@bufbuild/protobuf";
import { CellPresenceSchema } from "@diego/proto";
import type { PresenceStore } from "../src/cells/presence-store.js";
import { EtcdPresenceStore } from "../src/cells/etcd-presence-store.js";
import { MemoryPresenceStore } from "../src/cells/memory-presence-store.js";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { Leases } from "../src/etcd/leases.js";
import { Keys } from "../src/keys.js";
import type { LockStore } from "../src/locks/lock-store.js";
import { EtcdLockStore } from "../src/locks/etcd-lock-store.js";
import { MemoryLockStore } from "../src/locks/memory-lock-store.js";
import { connect, uniquePrefix, waitFor, wipe } from "./support/etcd.js";

/** Each backend gives two views of one state (for etcd: two BBS instances on one prefix). */
interface Backend {
  name: string;
  make(): Promise<{
    presence: [PresenceStore, PresenceStore];
    locks: [LockStore, LockStore];
    cleanup(): Promise<void>;
  }>;
}

const backends: Backend[] = [
  {
    name: "memory",
    async make() {
      const presence = new MemoryPresenceStore();
      const locks = new MemoryLockStore();
      return { presence: [presence, presence], locks: [locks, locks], cleanup: async () => undefined };
    },
  },
  {
    name: "etcd",
    async make() {
      const etcds: EtcdConnection[] = [await connect(), await connect()];
      const keys = new Keys(uniquePrefix("presence"));
      const make = (e: EtcdConnection) => ({
        presence: new EtcdPresenceStore(e, new Leases(e), keys),
        locks: new EtcdLockStore(e, new Leases(e), keys),
      });
      const [a, b] = etcds.map(make);
      return {
        presence: [a.presence, b.presence],
        locks: [a.locks, b.locks],
        async cleanup() {
          await wipe(etcds[0], keys.root);
          for (const e of etcds) await e.close();
        },
      };
    },
  },
];

const cell = (cellId: string, memoryMb = 1024) =>
  create(CellPresenceSchema, { cellId, address: `127.0.0.1:${1000 + memoryMb}`, zone: "z", total: { memoryMb } });

describe.each(backends)("presence and locks: $name", (backend) => {
  let ctx: Awaited<ReturnType<Backend["make"]>>;
  beforeEach(async () => (ctx = await backend.make()));
  afterEach(() => ctx.cleanup());

  test("a cell lives while heartbeats come (alternating between instances) and expires after its TTL", async () => {
    const [p1, p2] = ctx.presence;
    await p1.heartbeat(cell("cell-a"), 2_000);
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 700));
      await (i % 2 ? p1 : p2).heartbeat(cell("cell-a", 2048 + i), 2_000);
    }
    expect((await p1.list()).map((c) => c.cellId)).toEqual(["cell-a"]);
    expect((await p2.get("cell-a"))?.total?.memoryMb).toBe(2051);
    await waitFor("the cell to expire", async () => (await p1.list()).length === 0);
    expect(await p2.get("cell-a")).toBeUndefined();
  });

  test("deregister removes a cell at once", async () => {
    const [p1, p2] = ctx.presence;
    await p1.heartbeat(cell("cell-b"), 60_000);
    await p2.deregister("cell-b");
    expect(await p1.list()).toEqual([]);
  });

  test("a lock has one owner; it is refreshed by its owner and freed by release or expiry", async () => {
    const [l1, l2] = ctx.locks;
    await l1.lock("auctioneer", "a", "10.0.0.1:9016", 2_000);
    await expect(l2.lock("auctioneer", "b", "10.0.0.2:9016", 2_000)).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
    });
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 700));
      await (i % 2 ? l1 : l2).lock("auctioneer", "a", `10.0.0.1:${9016 + i}`, 2_000);
    }
    expect(await l2.fetch("auctioneer")).toEqual({ owner: "a", value: "10.0.0.1:9018" });
    await expect(l2.release("auctioneer", "b")).rejects.toMatchObject({ code: "FAILED_PRECONDITION" });
    await l2.release("auctioneer", "a");
    expect(await l1.fetch("auctioneer")).toBeUndefined();
    await l2.lock("auctioneer", "b", "10.0.0.2:9016", 2_000);
    await waitFor("the lock to expire", async () => (await l1.fetch("auctioneer")) === undefined);
    await l1.lock("auctioneer", "a", "10.0.0.1:9016", 2_000);
    expect((await l2.fetch("auctioneer"))?.owner).toBe("a");
  });
});

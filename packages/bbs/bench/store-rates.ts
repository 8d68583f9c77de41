// Rates without the BBS's gRPC API: the raw etcd compare-and-swap rate and the etcd task store itself
// (its write coalescer) in this process, against the same etcd as the rest of the run.
import { create } from "@bufbuild/protobuf";
import { createLogger } from "@diego/kit";
import { transition } from "@diego/models";
import { TaskCreateRequestSchema } from "@diego/proto";
import type { Etcd3 } from "etcd3";
import { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { Keys } from "../src/keys.js";
import { EtcdTaskStore } from "../src/store/etcd-task-store.js";

const logger = createLogger("bench", "warn");

/** CAS transactions per second with `inFlight` concurrent clients, each on keys of its own. */
export async function rawCas(etcd: Etcd3, inFlight: number, seconds: number): Promise<number> {
  const prefix = `/bench-cas-${inFlight}-${Date.now()}/`;
  const value = Buffer.alloc(200, 1);
  let done = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: inFlight }, async (_, worker) => {
      const key = Buffer.from(`${prefix}${worker}`);
      let revision = Number((await etcd.kv.put({ key, value })).header.revision);
      while (Date.now() < until) {
        const res = await etcd.kv.txn({
          compare: [{ key, target: "Mod", result: "Equal", mod_revision: revision }],
          success: [{ request_put: { key, value } }],
        });
        if (!res.succeeded) throw new Error("raw CAS lost a compare on a key of its own");
        revision = Number(res.header.revision);
        done++;
      }
    }),
  );
  const rate = done / seconds;
  await etcd.delete().prefix(prefix);
  return rate;
}

export async function storeLifecycles(
  etcdUrl: string,
  clients: number,
  seconds: number,
): Promise<{ rate: number; tasksPerTxn: number }> {
  const etcd = new EtcdConnection({ endpoints: [etcdUrl], requestTimeoutMs: 10_000, probeIntervalMs: 5_000, logger });
  await etcd.start();
  const prefix = `/bench-store-${clients}-${Date.now()}`;
  let txns = 0;
  let tasksInTxns = 0;
  const store = new EtcdTaskStore({
    etcd,
    keys: new Keys(prefix),
    logger,
    observeTxn: (tasks) => {
      txns++;
      tasksInTxns += tasks;
    },
  });
  await store.start();
  const now = () => BigInt(Date.now()) * 1_000_000n;
  let n = 0;
  let done = 0;
  const run = async (worker: number, until: number, count: () => void) => {
    while (Date.now() < until) {
      const g = `store-${worker}-${n++}`;
      const request = create(TaskCreateRequestSchema, {
        taskGuid: g,
        domain: "bench",
        rootFs: "docker:///diego/busybox",
        action: { action: { case: "run", value: { path: "/bin/true", user: "root" } } },
      });
      const cellId = "sim-cell";
      await store.apply(g, (c) => transition("desire", "client", c, { request }, now()));
      await store.apply(g, (c) => transition("start", "cell", c, { cellId }, now()));
      await store.apply(g, (c) => transition("running", "cell", c, { cellId }, now()));
      await store.apply(g, (c) =>
        transition("complete", "cell", c, { cellId, failed: false, failureReason: "", result: "ok" }, now()),
      );
      await store.apply(g, (c) => transition("resolve", "client", c, {}, now()));
      await store.apply(g, (c) => transition("delete", "client", c, {}, now()));
      count();
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, w) => run(w, Date.now() + 1_000, () => undefined)));
  txns = 0;
  tasksInTxns = 0;
  const until = Date.now() + seconds * 1000;
  await Promise.all(Array.from({ length: clients }, (_, w) => run(w, until, () => done++)));
  await store.stop();
  await etcd.close();
  return { rate: done / seconds, tasksPerTxn: tasksInTxns / Math.max(1, txns) };
}

// The etcd store gives each watch event its "before" from what its watch showed until then (not from
// etcd's prev_kv): with two stores writing the same tasks, every event's before is the previous event's
// after, on both stores, whoever wrote and however the compares raced.
import { transition, type Outcome } from "@diego/models";
import type { Task } from "@diego/proto";
import { Keys } from "../src/keys.js";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { EtcdTaskStore } from "../src/store/etcd-task-store.js";
import { encodeTask } from "../src/store/task-entry.js";
import type { TaskChange } from "../src/store/task-store.js";
import { connect, silent, uniquePrefix, waitFor, wipe } from "./support/etcd.js";
import { taskRequest } from "./support/tasks.js";

const NOW = 1_700_000_000_000_000_000n;
let etcd: EtcdConnection;
let prefix: string;
let stores: EtcdTaskStore[];
let seen: TaskChange[][];

beforeAll(async () => {
  etcd = await connect();
  prefix = uniquePrefix("watch-before");
  stores = [0, 1].map(() => new EtcdTaskStore({ etcd, keys: new Keys(prefix), logger: silent }));
  seen = stores.map(() => []);
  for (const [i, s] of stores.entries()) {
    await s.start();
    s.subscribe((e) => {
      if (e.kind !== "reset") seen[i]!.push(e);
    });
  }
});

afterAll(async () => {
  for (const s of stores) await s.stop();
  await wipe(etcd, prefix);
  await etcd.close();
});

const hex = (t: Task | undefined) => (t ? Buffer.from(encodeTask(t)).toString("hex") : "none");

function expectChained(changes: TaskChange[], guid: string) {
  const mine = changes.filter((c) => c.guid === guid);
  mine.forEach((c, i) => {
    if (i > 0) expect(c.revision).toBeGreaterThan(mine[i - 1]!.revision);
    expect(hex(c.before())).toBe(i === 0 ? "none" : hex(mine[i - 1]!.after()));
    expect(c.kind).toBe(i === 0 ? "created" : c.after() ? "changed" : "removed");
    expect(c.domain).toBe("test");
  });
  return mine.map((c) => c.kind);
}

test("every event's before is the previous event's after, on both stores, with both writing", async () => {
  const guids: string[] = [];
  const cells = ["cell-a", "cell-b"];
  await Promise.all(
    Array.from({ length: 20 }, async (_, n) => {
      const req = taskRequest();
      guids.push(req.taskGuid);
      const g = req.taskGuid;
      const on = (i: number) => stores[(n + i) % 2]!;
      const step = (i: number, m: (c: Task | undefined) => Outcome) => on(i).apply(g, m);
      await step(0, (c) => transition("desire", "client", c, { request: req }, NOW));
      // Both stores race to claim: one wins, the other's compare loses and it judges the fresh value.
      await Promise.all(
        cells.map((cellId, i) =>
          step(i, (c) => transition("start", "cell", c, { cellId }, NOW + 1n)).catch(() => undefined),
        ),
      );
      const owner = (await on(0).get(g))!.cellId;
      await step(1, (c) => transition("running", "cell", c, { cellId: owner }, NOW + 2n));
      await step(0, (c) =>
        transition("complete", "cell", c, { cellId: owner, failed: false, failureReason: "", result: "ok" }, NOW + 3n),
      );
      await step(1, (c) => transition("resolve", "client", c, {}, NOW + 4n));
      await step(0, (c) => transition("delete", "client", c, {}, NOW + 5n));
    }),
  );
  for (const [i] of stores.entries()) {
    await waitFor(`store ${i}'s events`, () => guids.every((g) => seen[i]!.filter((c) => c.guid === g).length >= 6));
    for (const g of guids)
      expect(expectChained(seen[i]!, g)).toEqual(["created", "changed", "changed", "changed", "changed", "removed"]);
  }
});

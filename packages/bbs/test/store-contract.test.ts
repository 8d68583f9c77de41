import { DiegoError, transition, type Outcome } from "@diego/models";
import { TaskState, type Task } from "@diego/proto";
import { Keys } from "../src/keys.js";
import { EtcdTaskStore } from "../src/store/etcd-task-store.js";
import { MemoryTaskStore } from "../src/store/memory-task-store.js";
import { MAX_STORED_TASK_BYTES } from "../src/store/task-size.js";
import type { TaskChange, TaskStore, TaskStoreEvent } from "../src/store/task-store.js";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { connect, silent, uniquePrefix, waitFor, wipe } from "./support/etcd.js";
import { taskRequest } from "./support/tasks.js";

const NOW = 1_700_000_000_000_000_000n;

interface Backend {
  name: string;
  make(): Promise<{ store: TaskStore; cleanup(): Promise<void> }>;
}

const backends: Backend[] = [
  {
    name: "memory",
    async make() {
      const store = new MemoryTaskStore();
      await store.start();
      return { store, cleanup: () => store.stop() };
    },
  },
  {
    name: "etcd",
    async make() {
      const etcd = await connect();
      const prefix = uniquePrefix("contract");
      const store = new EtcdTaskStore({ etcd, keys: new Keys(prefix), logger: silent });
      await store.start();
      return {
        store,
        async cleanup() {
          await store.stop();
          await wipe(etcd, prefix);
          await etcd.close();
        },
      };
    },
  },
];

const desire =
  (req = taskRequest()) =>
  (cur: Task | undefined) =>
    transition("desire", "client", cur, { request: req }, NOW);
const start = (cellId: string) => (cur: Task | undefined) => transition("start", "cell", cur, { cellId }, NOW + 1n);
const put = (o: Outcome) => (o.kind === "put" ? o.task : undefined);

describe.each(backends)("TaskStore contract: $name", (backend) => {
  let store: TaskStore;
  let cleanup: () => Promise<void>;
  let events: TaskStoreEvent[];

  beforeEach(async () => {
    ({ store, cleanup } = await backend.make());
    events = [];
    store.subscribe((e) => events.push(e));
  });
  afterEach(() => cleanup());

  test("creates a task once, reads it back, refuses a second create", async () => {
    const req = taskRequest({ domain: "d1" });
    const { before, outcome } = await store.apply(req.taskGuid, desire(req));
    expect(before).toBeUndefined();
    expect(put(outcome)?.state).toBe(TaskState.PENDING);
    const got = await store.get(req.taskGuid);
    expect(got?.taskGuid).toBe(req.taskGuid);
    expect(got?.domain).toBe("d1");
    expect(got?.createdAt).toBe(NOW);
    await expect(store.apply(req.taskGuid, desire(req))).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
  });

  test("a task too big to store is refused RESOURCE_EXHAUSTED before it is sent, and nothing is stored", async () => {
    const req = taskRequest({ annotation: "x".repeat(MAX_STORED_TASK_BYTES + 1) });
    const err = await store.apply(req.taskGuid, desire(req)).catch((e: unknown) => e);
    expect(DiegoError.is(err, "RESOURCE_EXHAUSTED")).toBe(true);
    expect((err as Error).message).toContain(`the limit is ${MAX_STORED_TASK_BYTES} bytes`);
    expect(await store.get(req.taskGuid)).toBeUndefined();
    // The store still writes (one refused value is not a failure of the store).
    const ok = taskRequest();
    await store.apply(ok.taskGuid, desire(ok));
    expect(store.healthy()).toBe(true);
  });

  test("a refused mutation changes nothing and returns its error", async () => {
    const req = taskRequest();
    await store.apply(req.taskGuid, desire(req));
    const err = await store
      .apply(req.taskGuid, (cur) =>
        transition("complete", "cell", cur, { cellId: "c", failed: false, failureReason: "", result: "" }, NOW),
      )
      .catch((e: unknown) => e);
    expect(DiegoError.is(err, "FAILED_PRECONDITION")).toBe(true);
    expect((await store.get(req.taskGuid))?.state).toBe(TaskState.PENDING);
    await expect(store.apply("no-such-task", start("c"))).rejects.toMatchObject({ code: "NOT_FOUND" });
    expect(await store.get("no-such-task")).toBeUndefined();
  });

  test("walks a task through its life and removes it", async () => {
    const req = taskRequest();
    const g = req.taskGuid;
    await store.apply(g, desire(req));
    await store.apply(g, start("cell-a"));
    expect((await store.apply(g, start("cell-a"))).outcome.kind).toBe("unchanged");
    await store.apply(g, (c) => transition("running", "cell", c, { cellId: "cell-a" }, NOW + 2n));
    await store.apply(g, (c) =>
      transition("complete", "cell", c, { cellId: "cell-a", failed: false, failureReason: "", result: "42" }, NOW + 3n),
    );
    await store.apply(g, (c) => transition("resolve", "client", c, {}, NOW + 4n));
    const { before, outcome } = await store.apply(g, (c) => transition("delete", "client", c, {}, NOW + 5n));
    expect(before?.result).toBe("42");
    expect(outcome.kind).toBe("delete");
    expect(await store.get(g)).toBeUndefined();
    const kinds = await waitFor("events", () => {
      const mine = events.filter((e): e is TaskChange => e.kind !== "reset" && e.guid === g);
      return mine.length >= 6 && mine.map((e) => e.kind);
    });
    expect(kinds).toEqual(["created", "changed", "changed", "changed", "changed", "removed"]);
    const changes = events.filter((e): e is TaskChange => e.kind !== "reset" && e.guid === g);
    expect(changes[1].before()?.state).toBe(TaskState.PENDING);
    expect(changes[1].after()?.state).toBe(TaskState.CLAIMED);
    expect(changes[5].before()?.state).toBe(TaskState.RESOLVING);
    expect(changes[5].domain).toBe("test");
  });

  test("lists by domain, cell and state", async () => {
    const a = taskRequest({ domain: "alpha" });
    const b = taskRequest({ domain: "alpha" });
    const c = taskRequest({ domain: "beta" });
    await Promise.all([a, b, c].map((r) => store.apply(r.taskGuid, desire(r))));
    await store.apply(b.taskGuid, start("cell-1"));
    const guids = async (f: Parameters<TaskStore["list"]>[0]) => (await store.list(f)).map((t) => t.taskGuid).sort();
    expect(await guids({ domain: "alpha" })).toEqual([a.taskGuid, b.taskGuid].sort());
    expect(await guids({ cellId: "cell-1" })).toEqual([b.taskGuid]);
    expect(await guids({ state: TaskState.PENDING })).toEqual([a.taskGuid, c.taskGuid].sort());
    expect(await guids({ domain: "alpha", state: TaskState.PENDING })).toEqual([a.taskGuid]);
    expect(await guids({ domain: "nowhere" })).toEqual([]);
    expect((await guids({})).length).toBe(3);
    expect(store.countByState().get(TaskState.PENDING)).toBe(2);
    expect([...store.entries()].find((e) => e.guid === b.taskGuid)).toMatchObject({
      cellId: "cell-1",
      state: TaskState.CLAIMED,
      domain: "alpha",
    });
  });

  test("concurrent changes of one task all apply, one after the other", async () => {
    const req = taskRequest();
    await store.apply(req.taskGuid, desire(req));
    const bump = (cur: Task | undefined): Outcome => ({
      kind: "put",
      task: { ...cur!, rejectionCount: cur!.rejectionCount + 1 },
    });
    await Promise.all(Array.from({ length: 40 }, () => store.apply(req.taskGuid, bump)));
    expect((await store.get(req.taskGuid))?.rejectionCount).toBe(40);
  });

  test("of racing claims by different cells exactly one wins", async () => {
    const reqs = Array.from({ length: 20 }, () => taskRequest());
    await Promise.all(reqs.map((r) => store.apply(r.taskGuid, desire(r))));
    const results = await Promise.all(
      reqs.flatMap((r) =>
        ["c1", "c2", "c3"].map((cell) =>
          store.apply(r.taskGuid, start(cell)).then(
            () => cell,
            (e: DiegoError) => e.code,
          ),
        ),
      ),
    );
    for (let i = 0; i < reqs.length; i++) {
      const mine = results.slice(i * 3, i * 3 + 3);
      const winners = mine.filter((r) => r.startsWith("c"));
      expect(winners).toHaveLength(1);
      expect(mine.filter((r) => r === "FAILED_PRECONDITION")).toHaveLength(2);
      expect((await store.get(reqs[i].taskGuid))?.cellId).toBe(winners[0]);
    }
  });
});

describe("EtcdTaskStore with two instances on one prefix", () => {
  let etcd: EtcdConnection;
  let prefix: string;
  let a: EtcdTaskStore;
  let b: EtcdTaskStore;

  beforeEach(async () => {
    etcd = await connect();
    prefix = uniquePrefix("two-stores");
    a = new EtcdTaskStore({ etcd, keys: new Keys(prefix), logger: silent });
    b = new EtcdTaskStore({ etcd, keys: new Keys(prefix), logger: silent });
    await a.start();
    await b.start();
  });
  afterEach(async () => {
    await a.stop();
    await b.stop();
    await wipe(etcd, prefix);
    await etcd.close();
  });

  test("each sees the other's writes through the watch, with events", async () => {
    const seen: string[] = [];
    b.subscribe((e) => e.kind !== "reset" && seen.push(`${e.kind}:${e.guid}`));
    const req = taskRequest();
    await a.apply(req.taskGuid, desire(req));
    await waitFor("b sees the task", async () => (await b.get(req.taskGuid))?.state === TaskState.PENDING);
    expect(seen).toEqual([`created:${req.taskGuid}`]);
    await b.apply(req.taskGuid, start("cell-b"));
    await waitFor("a sees the claim", async () => (await a.get(req.taskGuid))?.cellId === "cell-b");
  });

  test("a write based on a stale view is retried on fresh data, and a refusal is judged on the current task", async () => {
    const req = taskRequest();
    await a.apply(req.taskGuid, desire(req));
    await waitFor("b sees the task", async () => b.get(req.taskGuid));
    // Both claim at once, each from its own view: exactly one wins across the two instances.
    const results = await Promise.all([
      a.apply(req.taskGuid, start("cell-a")).then(
        () => "a",
        (e: DiegoError) => e.code,
      ),
      b.apply(req.taskGuid, start("cell-b")).then(
        () => "b",
        (e: DiegoError) => e.code,
      ),
    ]);
    expect(results.filter((r) => r === "a" || r === "b")).toHaveLength(1);
    expect(results).toContain("FAILED_PRECONDITION");
    const winner = results.find((r) => r === "a" || r === "b");
    const raw = await etcd.client.kv.range({ key: Buffer.from(new Keys(prefix).task(req.taskGuid)) });
    const { decodeTask } = await import("../src/store/task-entry.js");
    expect(decodeTask(raw.kvs[0].value).cellId).toBe(`cell-${winner}`);
  });

  test("an unreadable value is deleted rather than loaded or crashing the watch", async () => {
    const keys = new Keys(prefix);
    await etcd.client.kv.put({ key: Buffer.from(keys.task("garbage-1")), value: Buffer.from([0xff, 0xff, 0xff]) });
    await waitFor(
      "the watched garbage to be deleted",
      async () => (await etcd.client.kv.range({ key: Buffer.from(keys.task("garbage-1")) })).kvs.length === 0,
    );
    const req = taskRequest();
    await a.apply(req.taskGuid, desire(req));
    expect(await a.get("garbage-1")).toBeUndefined();
    await a.stop();
    await etcd.client.kv.put({ key: Buffer.from(keys.task("garbage-2")), value: Buffer.from("not a task") });
    a = new EtcdTaskStore({ etcd, keys, logger: silent });
    await a.start();
    expect(await a.get(req.taskGuid)).toBeDefined();
    expect(await a.get("garbage-2")).toBeUndefined();
    await waitFor(
      "the loaded garbage to be deleted",
      async () => (await etcd.client.kv.range({ key: Buffer.from(keys.task("garbage-2")) })).kvs.length === 0,
    );
  });

  test("a new instance loads what is stored", async () => {
    const reqs = Array.from({ length: 30 }, () => taskRequest({ domain: "load" }));
    await Promise.all(reqs.map((r) => a.apply(r.taskGuid, desire(r))));
    const c = new EtcdTaskStore({ etcd, keys: new Keys(prefix), logger: silent, pageSize: 7 });
    await c.start();
    expect((await c.list({ domain: "load" })).length).toBe(30);
    await c.stop();
  });
});

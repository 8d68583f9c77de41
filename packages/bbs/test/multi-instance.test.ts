import { createClient, type ServiceClient } from "@diego/kit";
import type { DiegoError } from "@diego/models";
import { TaskLifecycleService, TaskService, TaskState, type TaskEvent } from "@diego/proto";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { Keys } from "../src/keys.js";
import { startBbs, type RunningBbs } from "../src/start-bbs.js";
import { decodeTask } from "../src/store/task-entry.js";
import { connect, etcdUrl, silent, uniquePrefix, waitFor, wipe } from "./support/etcd.js";
import { taskRequest } from "./support/tasks.js";

type TaskClient = ServiceClient<(typeof TaskService)["method"]>;
type LifecycleClient = ServiceClient<(typeof TaskLifecycleService)["method"]>;

let etcd: EtcdConnection;
let prefix: string;
let a: RunningBbs;
let b: RunningBbs;
const clients: { close(): void }[] = [];

function clientsOf(bbs: RunningBbs): { tasks: TaskClient; lifecycle: LifecycleClient } {
  const tasks = createClient(TaskService, bbs.address);
  const lifecycle = createClient(TaskLifecycleService, bbs.address);
  clients.push(tasks, lifecycle);
  return { tasks, lifecycle };
}

beforeAll(async () => {
  etcd = await connect();
  prefix = uniquePrefix("multi");
  const config = {
    etcdEndpoints: [etcdUrl()],
    etcdPrefix: prefix,
    listenAddress: "127.0.0.1:0",
    statusAddress: "127.0.0.1:0",
    lockTtl: 2_000,
  };
  a = await startBbs(config, { logger: silent });
  b = await startBbs(config, { logger: silent });
});

afterAll(async () => {
  for (const c of clients) c.close();
  await a.stop();
  await b.stop();
  await wipe(etcd, prefix);
  await etcd.close();
});

/** The task as etcd holds it, read directly. */
async function inEtcd(guid: string) {
  const res = await etcd.client.kv.range({ key: Buffer.from(new Keys(prefix).task(guid)) });
  return res.kvs[0] ? decodeTask(res.kvs[0].value) : undefined;
}

test("exactly one of the instances leads", async () => {
  await waitFor("a leader", () => a.isLeader() || b.isLeader());
  expect(a.isLeader() && b.isLeader()).toBe(false);
});

test("races: many clients on both instances fire conflicting transitions; each has exactly one winner", async () => {
  const ca = clientsOf(a);
  const cb = clientsOf(b);
  const both = [ca, cb];
  const guids: string[] = [];
  for (let i = 0; i < 30; i++) {
    const req = taskRequest({ domain: "race" });
    await both[i % 2].tasks.desireTask(req);
    guids.push(req.taskGuid);
  }
  await waitFor("both instances see every task", async () =>
    (await Promise.all(both.map((c) => c.tasks.listTasks({ domain: "race" })))).every((r) => r.tasks.length === 30),
  );

  // Claims: four cells per task, spread over both instances.
  const cells = ["c1", "c2", "c3", "c4"];
  const claims = await Promise.all(
    guids.flatMap((g) =>
      cells.map((cell, i) =>
        both[i % 2].lifecycle.startTask({ taskGuid: g, cellId: cell }).then(
          (r) => (r.shouldStart ? cell : "repeat"),
          (e: DiegoError) => e.code,
        ),
      ),
    ),
  );
  const winners = new Map<string, string>();
  guids.forEach((g, i) => {
    const results = claims.slice(i * 4, i * 4 + 4);
    const won = results.filter((r) => cells.includes(r));
    expect(won).toHaveLength(1);
    for (const r of results) if (!cells.includes(r)) expect(r).toBe("FAILED_PRECONDITION");
    winners.set(g, won[0]);
  });

  // Cancel races completion: exactly one of them wins each task.
  const ends = await Promise.all(
    guids.flatMap((g, i) => [
      both[i % 2].tasks.cancelTask({ taskGuid: g }).then(
        () => "cancel",
        (e: DiegoError) => e.code,
      ),
      both[(i + 1) % 2].lifecycle.completeTask({ taskGuid: g, cellId: winners.get(g)!, result: "done" }).then(
        () => "complete",
        (e: DiegoError) => e.code,
      ),
    ]),
  );
  for (let i = 0; i < guids.length; i++) {
    const [cancel, complete] = ends.slice(i * 2, i * 2 + 2);
    expect([cancel, complete].filter((r) => r === "cancel" || r === "complete")).toHaveLength(1);
    expect([cancel, complete].filter((r) => r === "FAILED_PRECONDITION")).toHaveLength(1);
    const stored = await inEtcd(guids[i]);
    expect(stored?.state).toBe(TaskState.COMPLETED);
    expect(stored?.cellId).toBe(winners.get(guids[i]));
    if (cancel === "cancel")
      expect(stored).toMatchObject({ failed: true, failureReason: "task was cancelled", result: "" });
    else expect(stored).toMatchObject({ failed: false, result: "done" });
  }

  // Resolve races: exactly one resolver per task, then exactly one delete.
  const resolves = await Promise.all(
    guids.flatMap((g) =>
      both.map((c) =>
        c.tasks.resolvingTask({ taskGuid: g }).then(
          () => "ok",
          (e: DiegoError) => e.code,
        ),
      ),
    ),
  );
  for (let i = 0; i < guids.length; i++)
    expect(resolves.slice(i * 2, i * 2 + 2).sort()).toEqual(["FAILED_PRECONDITION", "ok"]);
  const deletes = await Promise.all(
    guids.flatMap((g) =>
      both.map((c) =>
        c.tasks.deleteTask({ taskGuid: g }).then(
          () => "ok",
          (e: DiegoError) => e.code,
        ),
      ),
    ),
  );
  for (let i = 0; i < guids.length; i++) {
    const pair = deletes.slice(i * 2, i * 2 + 2);
    expect(pair.filter((r) => r === "ok")).toHaveLength(1);
    expect(["NOT_FOUND", "FAILED_PRECONDITION"]).toContain(pair.find((r) => r !== "ok"));
    expect(await inEtcd(guids[i])).toBeUndefined();
  }
});

test("a watch on one instance sees created, each change and removed for writes made through the other", async () => {
  const ca = clientsOf(a);
  const cb = clientsOf(b);
  const events: TaskEvent[] = [];
  const abort = new AbortController();
  const watching = (async () => {
    for await (const ev of ca.tasks.watchTasks({ domain: "cross" }, { signal: abort.signal }))
      if (ev.event.case !== "live") events.push(ev);
  })().catch(() => undefined);
  await waitFor("the watch to be subscribed", () => a.hub.size > 0);

  const req = taskRequest({ domain: "cross" });
  await cb.tasks.desireTask(req);
  const g = req.taskGuid;
  await cb.lifecycle.startTask({ taskGuid: g, cellId: "cell-x" });
  await cb.lifecycle.runningTask({ taskGuid: g, cellId: "cell-x" });
  await cb.lifecycle.completeTask({ taskGuid: g, cellId: "cell-x", result: "r" });
  await cb.tasks.resolvingTask({ taskGuid: g });
  await cb.tasks.deleteTask({ taskGuid: g });
  await waitFor("6 events", () => events.length >= 6);
  abort.abort();
  await watching;
  expect(events.map((e) => e.event.case)).toEqual(["created", "changed", "changed", "changed", "changed", "removed"]);
  const after = events.slice(1, 5).map((e) => (e.event.case === "changed" ? e.event.value.after!.state : undefined));
  expect(after).toEqual([TaskState.CLAIMED, TaskState.RUNNING, TaskState.COMPLETED, TaskState.RESOLVING]);
});

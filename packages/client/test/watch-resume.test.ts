import { randomBytes } from "node:crypto";
import { DiegoError } from "@diego/models";
import type { TaskEvent } from "@diego/proto";
import { DiegoClient } from "../src/diego-client.js";
import { decideAfterCut, isResync, type TaskResync, type WatchItem } from "../src/resumable-watch.js";
import { eventually, freePort, InProcessCluster } from "../src/testing/index.js";

// watch() resumes after a cut from the last event's resume_token: cut through a proxy, the events seen
// are exactly those of a watcher that was never cut. A BBS restart loses the kept events: the watch
// says so with a TaskResync listing the tasks, and goes on. The clusters run no auctioneer: the tasks stay
// PENDING until cancelled, so the only events are the tests' own.

let n = 0;
const task = (domain: string, labels: Record<string, string> = {}) => ({
  taskGuid: `resume-${process.pid}-${++n}`,
  domain,
  rootFs: "docker:///diego/busybox",
  action: { action: { case: "run" as const, value: { path: "/bin/true" } } },
  labels,
});

/** Collects a watch's items in the background until stopped. */
function collect(client: DiegoClient, filter: Parameters<DiegoClient["watch"]>[0]) {
  const stop = new AbortController();
  const items: WatchItem[] = [];
  const reconnects: unknown[] = [];
  const done = (async () => {
    for await (const item of client.watch(filter, {
      signal: stop.signal,
      backoff: { initialMs: 20, maxMs: 200 },
      onReconnect: (_attempt, err) => reconnects.push(err),
    }))
      items.push(item);
  })().catch((err: unknown) => (DiegoError.is(err, "CANCELLED") ? undefined : Promise.reject(err)));
  const events = () => items.filter((i): i is TaskEvent => !isResync(i) && i.event.case !== "live");
  return {
    items,
    reconnects,
    events,
    tokens: () => events().map((e) => e.resumeToken),
    stop: async () => {
      stop.abort();
      await done;
    },
  };
}

test.each([
  ["a transport cut", new DiegoError("UNAVAILABLE", "x"), true, "resume"],
  ["a watcher cut off for falling behind", new DiegoError("RESOURCE_EXHAUSTED", "x"), true, "resume"],
  ["an event stream reset", new DiegoError("ABORTED", "x"), true, "resume"],
  ["a non-DiegoError", new Error("socket hang up"), true, "resume"],
  ["events no longer kept", new DiegoError("OUT_OF_RANGE", "x"), true, "resync"],
  [
    "a stream's own token the BBS does not read",
    new DiegoError("INVALID_ARGUMENT", "x", [{ field: "resume_token", message: "x" }]),
    true,
    "resync",
  ],
  [
    "the caller's token the BBS does not read",
    new DiegoError("INVALID_ARGUMENT", "x", [{ field: "resume_token", message: "x" }]),
    false,
    "fail",
  ],
  ["a bad selector", new DiegoError("INVALID_ARGUMENT", "x", [{ field: "labels", message: "x" }]), true, "fail"],
  ["not allowed", new DiegoError("PERMISSION_DENIED", "x"), true, "fail"],
])("after %s", (_name, err, ownToken, expected) => {
  expect(decideAfterCut(err, ownToken)).toBe(expected);
});

test("cut again and again through a proxy, the watch misses and repeats nothing", async () => {
  const bbs = await InProcessCluster.start({ auctioneer: false });
  const proxy = await bbs.proxy();
  const direct = new DiegoClient({ address: bbs.address, timeoutMs: 5_000 });
  const proxied = new DiegoClient({ address: proxy.address, timeoutMs: 5_000 });
  const domain = `cut-${n}`;
  try {
    const reference = collect(direct, { domain });
    const cut = collect(proxied, { domain });
    await eventually("both watches are live", () => bbs.watchers === 2 && proxy.open("WatchTasks") === 1);
    const guids: string[] = [];
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 4; i++) {
        const t = task(domain);
        guids.push(t.taskGuid);
        await direct.desire(t);
        if (i % 2 === 0) await direct.cancel(t.taskGuid);
      }
      // While cut, events keep coming; the watch picks them up from its last token.
      expect(proxy.cut("WatchTasks")).toBe(1);
      await direct.desire(task(domain));
      await eventually("the watch is back", () => proxy.open("WatchTasks") === 1);
    }
    await eventually("the cut watch has caught up", () => cut.tokens().length === reference.tokens().length);
    expect(cut.tokens()).toEqual(reference.tokens());
    expect(new Set(cut.tokens()).size).toBe(cut.tokens().length);
    expect(cut.reconnects.length).toBeGreaterThanOrEqual(5);
    // One live marker, first; never a resync (the BBS still had every event).
    expect(cut.items[0]).toMatchObject({ event: { case: "live" } });
    expect(cut.items.filter((i) => !isResync(i) && i.event.case === "live")).toHaveLength(1);
    expect(cut.items.some(isResync)).toBe(false);
    await reference.stop();
    await cut.stop();
  } finally {
    direct.close();
    proxied.close();
    await bbs.stop();
  }
});

test("the labels selector holds across a resume", async () => {
  const bbs = await InProcessCluster.start({ auctioneer: false });
  const proxy = await bbs.proxy();
  const client = new DiegoClient({ address: proxy.address, timeoutMs: 5_000 });
  try {
    const w = collect(client, { labels: { team: "red" } });
    await eventually("watching", () => proxy.open("WatchTasks") === 1);
    const red = task("labelled", { team: "red" });
    await client.desire(red);
    await client.desire(task("labelled", { team: "blue" }));
    proxy.cut("WatchTasks");
    await client.cancel(red.taskGuid);
    await client.desire(task("labelled", { team: "blue", extra: "1" }));
    await eventually("both events of the red task", () => w.events().length === 2);
    expect(w.events().map((e) => e.event.case)).toEqual(["created", "changed"]);
    await w.stop();
  } finally {
    client.close();
    await bbs.stop();
  }
});

test("a BBS restart: the kept events are gone, so the watch resyncs with the tasks and goes on", async () => {
  const etcd = process.env.DIEGO_TEST_ETCD!;
  const listenAddress = `127.0.0.1:${await freePort()}`;
  const bbsConfig = {
    store: "etcd" as const,
    etcdEndpoints: [etcd],
    etcdPrefix: `/test-client/${randomBytes(4).toString("hex")}`,
  };
  let bbs = await InProcessCluster.start({ listenAddress, bbs: bbsConfig, auctioneer: false });
  const client = new DiegoClient({ address: listenAddress, timeoutMs: 5_000 });
  const domain = "restarted";
  try {
    const w = collect(client, { domain });
    await eventually("watching", () => bbs.watchers === 1);
    const before = task(domain);
    await client.desire(before);
    await eventually("its created event", () => w.events().length === 1);
    await bbs.stop();
    // Written while no BBS runs this stream: only the listing can tell.
    bbs = await InProcessCluster.start({ listenAddress, bbs: bbsConfig, auctioneer: false });
    const whileAway = task(domain);
    await client.desire(whileAway);
    const resync = await eventually("a resync", () => w.items.find(isResync) as TaskResync | undefined);
    expect(resync.reason).toMatch(/resume_token|no longer kept|another event history/);
    expect(resync.tasks.map((t) => t.taskGuid).sort()).toEqual(expect.arrayContaining([before.taskGuid]));
    const after = task(domain);
    await client.desire(after);
    await eventually("events go on after the resync", () =>
      w.events().some((e) => e.event.case === "created" && e.event.value.task?.taskGuid === after.taskGuid),
    );
    await w.stop();
  } finally {
    client.close();
    await bbs.stop();
  }
});

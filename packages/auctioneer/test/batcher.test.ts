import { create } from "@bufbuild/protobuf";
import { cellv1 } from "@diego/proto";
import { Batcher, TrackedTasks } from "../src/index.js";

const work = (taskGuid: string, memoryMb = 64) =>
  create(cellv1.TaskWorkSchema, { taskGuid, rootFs: "docker:///x/y", memoryMb });

describe("Batcher", () => {
  test("requests accumulate until drained, then form the next batch", () => {
    const b = new Batcher();
    b.add([work("a"), work("b")]);
    b.add([work("c")]);
    expect(b.drain().map((t) => t.taskGuid)).toEqual(["a", "b", "c"]);
    b.add([work("d")]);
    expect(b.drain().map((t) => t.taskGuid)).toEqual(["d"]);
    expect(b.drain()).toEqual([]);
  });

  test("de-duplicates by task guid: one entry, the latest request's contents", () => {
    const b = new Batcher();
    expect(b.add([work("a", 1), work("b"), work("a", 2)])).toBe(2);
    expect(b.add([work("a", 3)])).toBe(2);
    const batch = b.drain();
    expect(batch.map((t) => [t.taskGuid, t.memoryMb])).toEqual([
      ["b", 64],
      ["a", 3],
    ]);
  });

  test("waitForWork resolves at once when work is queued, on add, or after the timeout", async () => {
    const b = new Batcher();
    let woke = false;
    const waiting = b.waitForWork(60_000).then(() => (woke = true));
    await Promise.resolve();
    expect(woke).toBe(false);
    b.add([work("a")]);
    await waiting;
    expect(woke).toBe(true);
    await b.waitForWork(60_000); // already queued
    b.drain();
    await b.waitForWork(5); // times out
  });

  test("adding nothing does not wake a waiter", async () => {
    const b = new Batcher();
    let woke = false;
    const waiting = b.waitForWork(50).then(() => (woke = true));
    b.add([]);
    await Promise.resolve();
    expect(woke).toBe(false);
    await waiting;
  });
});

describe("TrackedTasks", () => {
  test("merge refreshes known tasks, keeps their refusals; expiry forgets tasks not asked for", () => {
    const t = new TrackedTasks(1_000);
    t.merge([work("a"), work("b")], 0);
    expect(t.refused("a", { cellId: "c1", reason: "no" })).toBe(1);
    t.merge([work("a", 128)], 900);
    expect(t.get("a")?.task.memoryMb).toBe(128);
    expect(t.get("a")?.refusals).toEqual([{ cellId: "c1", reason: "no" }]);
    expect(t.exclusions()).toEqual(new Map([["a", new Set(["c1"])]]));
    expect(t.expire(1_500)).toEqual(["b"]);
    expect(t.all().map((x) => x.task.taskGuid)).toEqual(["a"]);
  });
});

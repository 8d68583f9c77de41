import { CapacityLedger } from "../src/capacity/capacity-ledger.js";
import { LineSplitter, MAX_LINE_BYTES } from "../src/logs/line-splitter.js";
import { TaskLogStore } from "../src/logs/task-log-store.js";

describe("capacity ledger", () => {
  test("reserves by memory, disk and containers and refuses with the missing resources", () => {
    const l = new CapacityLedger({ memoryMb: 100, diskMb: 100, containers: 2 });
    expect(l.reserve({ taskGuid: "a", memoryMb: 60, diskMb: 10 })).toEqual({ admitted: true });
    expect(l.reserve({ taskGuid: "a", memoryMb: 60, diskMb: 10 })).toEqual({ admitted: true });
    expect(l.available()).toEqual({ memoryMb: 40, diskMb: 90, containers: 1 });
    expect(l.reserve({ taskGuid: "b", memoryMb: 50, diskMb: 95 })).toMatchObject({
      admitted: false,
      reason: "insufficient resources: disk, memory",
    });
    expect(l.reserve({ taskGuid: "b", memoryMb: 40, diskMb: 90 })).toEqual({ admitted: true });
    expect(l.reserve({ taskGuid: "c", memoryMb: 0, diskMb: 0 })).toMatchObject({
      admitted: false,
      reason: "insufficient resources: containers",
    });
    l.release("a");
    expect(l.available()).toEqual({ memoryMb: 60, diskMb: 10, containers: 1 });
    expect(l.list().map((r) => r.taskGuid)).toEqual(["b"]);
  });
});

describe("line splitter", () => {
  test("splits on newlines across chunks, drops \\r before \\n, flushes the rest", () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.write(Buffer.from("one\r\ntw"));
    s.write(Buffer.from("o\n\nthree"));
    s.end();
    expect(lines).toEqual(["one", "two", "", "three"]);
  });
  test("cuts very long lines", () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.write(Buffer.alloc(MAX_LINE_BYTES + 10, "a"));
    s.end();
    expect(lines.map((l) => l.length)).toEqual([MAX_LINE_BYTES, 10]);
  });
});

describe("task log store", () => {
  const line = (message: string) => ({ message, source: "S", stream: "stdout" as const });

  test("keeps a bounded buffer per task, tagged with the log guid", async () => {
    const store = new TaskLogStore({ retentionMs: 60_000, maxLines: 3 });
    store.open("t", "lg");
    for (const m of ["1", "2", "3", "4"]) store.append("t", line(m));
    const got = [];
    for await (const l of store.read("t", false)) got.push(l);
    expect(got.map((l) => l.message)).toEqual(["2", "3", "4"]);
    expect(got[0]).toMatchObject({ logGuid: "lg", source: "S", stream: "stdout" });
    store.close();
  });

  test("a log opened at the claim takes the task's log guid once it is known; a claim that was refused is forgotten", async () => {
    const store = new TaskLogStore({ retentionMs: 60_000 });
    store.open("t", "");
    store.open("t", "lg");
    store.append("t", line("x"));
    const got = [];
    for await (const l of store.read("t", false)) got.push(l);
    expect(got[0]).toMatchObject({ logGuid: "lg", message: "x" });
    store.open("refused", "");
    expect(store.has("refused")).toBe(true);
    store.discard("refused");
    expect(store.has("refused")).toBe(false);
    store.close();
  });

  test("follow streams new lines until the task ends", async () => {
    const store = new TaskLogStore({ retentionMs: 60_000 });
    store.open("t", "");
    store.append("t", line("before"));
    const got: string[] = [];
    const reading = (async () => {
      for await (const l of store.read("t", true)) got.push(l.message);
    })();
    await new Promise((r) => setTimeout(r, 20));
    store.append("t", line("during"));
    await new Promise((r) => setTimeout(r, 20));
    store.end("t");
    await reading;
    expect(got).toEqual(["before", "during"]);
    store.close();
  });

  test("the cell-wide budget drops finished tasks' logs first, then the oldest lines of the biggest running one", async () => {
    const store = new TaskLogStore({ retentionMs: 60_000, maxTotalBytes: 100 });
    const ten = "x".repeat(10);
    const messages = async (guid: string) => {
      const got = [];
      for await (const l of store.read(guid, false)) got.push(l.message);
      return got;
    };
    store.open("done", "");
    for (let i = 0; i < 3; i++) store.append("done", line(ten));
    store.end("done");
    store.open("quiet", "");
    store.append("quiet", line(ten));
    store.open("noisy", "");
    for (let i = 0; i < 6; i++) store.append("noisy", line(`${i}`.repeat(10)));
    expect([store.has("done"), store.totalBytes]).toEqual([true, 100]);
    store.append("noisy", line("6".repeat(10)));
    expect(store.has("done")).toBe(false);
    expect(store.totalBytes).toBe(80);
    store.append("noisy", line("7".repeat(10)));
    store.append("noisy", line("8".repeat(10)));
    store.append("noisy", line("9".repeat(10)));
    expect(store.totalBytes).toBeLessThanOrEqual(100);
    expect(await messages("quiet")).toEqual([ten]);
    const noisy = await messages("noisy");
    expect(noisy.at(-1)).toBe("9".repeat(10));
    expect(noisy[0]).not.toBe("0".repeat(10));
    store.close();
  });

  test("lines stay for the retention time after the end, then go", async () => {
    const store = new TaskLogStore({ retentionMs: 50 });
    store.open("t", "");
    store.append("t", line("x"));
    store.end("t");
    expect(store.has("t")).toBe(true);
    store.append("t", line("after the end"));
    const got = [];
    for await (const l of store.read("t", true)) got.push(l.message);
    expect(got).toEqual(["x"]);
    const until = Date.now() + 5000;
    while (store.has("t") && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    expect(store.has("t")).toBe(false);
  });
});

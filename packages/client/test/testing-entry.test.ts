import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TaskState } from "@diego/proto";
import { DiegoClient } from "../src/diego-client.js";
import { eventually, InProcessCluster } from "../src/testing/index.js";

// @diego/client/testing itself: what tests of other programs rely on.
let cluster: InProcessCluster;

beforeAll(async () => {
  cluster = await InProcessCluster.start();
  await cluster.startCell({ cellId: "cell-7" });
});

afterAll(() => cluster.stop());

const task = (taskGuid: string, script: string) => ({
  taskGuid,
  domain: "testing-entry",
  rootFs: "docker:///diego/busybox",
  action: { action: { case: "run" as const, value: { path: "/bin/sh", args: ["-c", script] } } },
});

test("the main entry never imports @diego/bbs, @diego/testing or the testing entry", () => {
  const src = resolve(import.meta.dirname, "../src");
  const files = readdirSync(src).filter((f) => f.endsWith(".ts"));
  expect(files).toContain("index.ts");
  for (const f of files) {
    const text = readFileSync(join(src, f), "utf8");
    expect({
      file: f,
      importsBbs: /from\s+["']@diego\/(bbs|auctioneer|cell|testing)["']/.test(text),
      importsTesting: /from\s+["']\.\/testing\//.test(text),
    }).toEqual({
      file: f,
      importsBbs: false,
      importsTesting: false,
    });
  }
});

test("the cluster's proxy passes answers, errors (code, message, field violations) and streams through as the BBS gave them", async () => {
  const proxy = await cluster.proxy();
  const c = new DiegoClient({ address: proxy.address, timeoutMs: 5_000 });
  const g = `testing-entry-${process.pid}`;
  try {
    expect(await c.desire(task(g, "echo hello; sleep 600"))).toMatchObject({ taskGuid: g, state: TaskState.PENDING });
    await expect(c.desire(task(g, "true"))).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
    await expect(c.desire({ ...task(g, "true"), rootFs: "" })).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      violations: [{ field: "root_fs" }],
    });
    // The auctioneer placed it on the one cell, which runs it.
    expect(await cluster.waitFor(g, (t) => t?.state === TaskState.RUNNING)).toMatchObject({ cellId: "cell-7" });
    await expect(c.resolve(g)).rejects.toMatchObject({
      code: "FAILED_PRECONDITION",
      message: "Cannot transition from RUNNING to RESOLVING",
    });
    const logs = async () => {
      const lines: string[] = [];
      for await (const line of c.logs(g)) lines.push(line.message);
      return lines;
    };
    await eventually("the task's output, from its cell", async () => (await logs()).includes("hello"));
    expect(await logs()).toEqual(["hello"]);
    expect((await c.listCells()).map((cell) => cell.cellId)).toEqual(["cell-7"]);
    await c.cancel(g);
    expect(proxy.count("DesireTask")).toBe(3);
    expect(proxy.count("ResolvingTask")).toBe(1);
    expect(proxy.count("ListCells")).toBe(1);
    expect(proxy.count("CancelTask")).toBe(1);
    expect(proxy.count("TaskLogs")).toBeGreaterThanOrEqual(2);
  } finally {
    c.close();
  }
});

import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { TaskState } from "@diego/proto";
import { DiegoClient } from "../src/diego-client.js";
import { TestBbs } from "../src/testing/index.js";

// @diego/client/testing itself: what tests of other programs rely on.
let bbs: TestBbs;

beforeAll(async () => {
  bbs = await TestBbs.start();
});

afterAll(() => bbs.stop());

const task = (taskGuid: string) => ({
  taskGuid,
  domain: "testing-entry",
  rootFs: "docker:///diego/busybox",
  action: { action: { case: "run" as const, value: { path: "/bin/true" } } },
});

test("the main entry never imports @diego/bbs or the testing entry", () => {
  const src = resolve(import.meta.dirname, "../src");
  const files = readdirSync(src).filter((f) => f.endsWith(".ts"));
  expect(files).toContain("index.ts");
  for (const f of files) {
    const text = readFileSync(join(src, f), "utf8");
    expect({
      file: f,
      importsBbs: /from\s+["']@diego\/(bbs|auctioneer)["']/.test(text),
      importsTesting: /from\s+["']\.\/testing\//.test(text),
    }).toEqual({
      file: f,
      importsBbs: false,
      importsTesting: false,
    });
  }
});

test("the proxy passes answers, errors (code, message, field violations) and streams through as the BBS gave them", async () => {
  const proxy = await bbs.proxy();
  const c = new DiegoClient({ address: proxy.address, timeoutMs: 5_000 });
  const g = `testing-entry-${process.pid}`;
  expect(await c.desire(task(g))).toMatchObject({ taskGuid: g, state: TaskState.PENDING });
  await expect(c.desire(task(g))).rejects.toMatchObject({ code: "ALREADY_EXISTS" });
  await expect(c.resolve(g)).rejects.toMatchObject({
    code: "FAILED_PRECONDITION",
    message: "Cannot transition from PENDING to RESOLVING",
  });
  await expect(c.desire({ ...task(g), rootFs: "" })).rejects.toMatchObject({
    code: "INVALID_ARGUMENT",
    violations: [{ field: "root_fs" }],
  });
  await bbs.start(g, "cell-7");
  bbs.log(g, "hello");
  const lines: string[] = [];
  for await (const line of c.logs(g)) lines.push(line.message);
  expect(lines).toEqual(["hello"]);
  expect((await c.listCells()).map((cell) => cell.cellId)).toEqual(["cell-7"]);
  expect(proxy.calls).toEqual(["DesireTask", "DesireTask", "ResolvingTask", "DesireTask", "TaskLogs", "ListCells"]);
  c.close();
});

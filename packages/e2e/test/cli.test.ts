import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, diego, REPO_ROOT, uniqueGuid } from "../src/index.js";

// Issues 2 and 6: the diego command tried as a new user would, against a live cluster.
let cluster: Cluster;
let env: NodeJS.ProcessEnv;
let dir: string;

function taskFile(guid: string, change: Record<string, unknown> = {}): string {
  const json = {
    ...JSON.parse(readFileSync(join(REPO_ROOT, "packages/e2e/fixtures/hello.json"), "utf8")),
    task_guid: guid,
    log_guid: guid,
    ...change,
  };
  const file = join(dir, `${guid}.json`);
  writeFileSync(file, JSON.stringify(json, null, 2));
  return file;
}

beforeAll(async () => {
  cluster = await Cluster.start();
  env = { DIEGO_BBS_ADDR: cluster.bbsAddress };
  dir = mkdtempSync(join(tmpdir(), "diego-cli-"));
}, 180_000);

afterAll(() => cluster?.stop());

test("--help lists the commands", async () => {
  const { code, stdout } = await diego(["--help"]);
  expect(code).toBe(0);
  for (const cmd of ["desire", "run", "get", "list", "cancel", "resolve", "delete", "watch", "logs", "cells"])
    expect(stdout).toContain(cmd);
});

test("desire, get, list, resolve, delete the issue's task", async () => {
  const guid = uniqueGuid("cli");
  const desired = await diego(["desire", taskFile(guid)], env);
  expect(desired.code).toBe(0);
  let task: Record<string, unknown> = {};
  for (let i = 0; i < 300 && task.state !== "COMPLETED"; i++) {
    const got = await diego(["get", guid, "--json"], env);
    expect(got.code).toBe(0);
    task = JSON.parse(got.stdout) as Record<string, unknown>;
    if (task.state !== "COMPLETED") await new Promise((r) => setTimeout(r, 300));
  }
  expect(task).toMatchObject({ task_guid: guid, state: "COMPLETED", result: "42" });
  expect(typeof task.created_at).toBe("number");
  const list = await diego(["list", "--domain", "demo", "--json"], env);
  expect(
    list.stdout
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l).task_guid),
  ).toContain(guid);
  const human = await diego(["list", "--domain", "demo"], env);
  expect(human.stdout).toContain(guid);
  expect((await diego(["resolve", guid], env)).code).toBe(0);
  expect((await diego(["delete", guid], env)).code).toBe(0);
  const gone = await diego(["get", guid], env);
  expect(gone.code).toBe(4);
  expect(gone.stderr).toContain(guid);
});

test("desire - reads the task from stdin", async () => {
  const guid = uniqueGuid("stdin");
  const text = readFileSync(taskFile(guid), "utf8");
  const res = await diego(["desire", "-"], env, text);
  expect(res.code).toBe(0);
  expect((await diego(["run", taskFile(uniqueGuid("again"))], env)).code).toBe(0);
  await diego(["cancel", guid], env);
});

test("run --wait prints the result and exits 0; a failing task exits with its own exit status and its reason", async () => {
  const ok = await diego(["run", taskFile(uniqueGuid("run-ok")), "--wait"], env);
  expect(ok.code).toBe(0);
  expect(ok.stdout).toContain("42");
  const bad = await diego(
    [
      "run",
      taskFile(uniqueGuid("run-bad"), { action: { run: { path: "/bin/sh", args: ["-c", "exit 7"] } } }),
      "--wait",
      "--json",
    ],
    env,
  );
  // Like docker run: the run action's exit status (124 when the cell reported none; docs/contract.md).
  expect(bad.code).toBe(JSON.parse(bad.stdout).exit_status ?? 124);
  expect(bad.code).not.toBe(0);
  expect(bad.stderr).toContain("DEMO: Exited with status 7");
});

test("run --logs shows the task's output", async () => {
  const res = await diego(["run", taskFile(uniqueGuid("run-logs")), "--wait", "--logs"], env);
  expect(res.code).toBe(0);
  expect(res.stdout + res.stderr).toContain("hello");
});

test("cells lists both cells", async () => {
  const res = await diego(["cells", "--json"], env);
  expect(res.code).toBe(0);
  const ids = res.stdout
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l).cell_id)
    .sort();
  expect(ids).toEqual(["cell-1", "cell-2"]);
});

test("clear errors: a bad file names the field, an unreachable BBS names the address, a missing task", async () => {
  const badFile = join(dir, "bad.json");
  writeFileSync(
    badFile,
    JSON.stringify({
      task_guid: "x",
      domain: "d",
      root_fs: "docker:///diego/busybox",
      memory_mb: -1,
      action: { run: { path: "/bin/true" } },
    }),
  );
  const bad = await diego(["desire", badFile], env);
  expect(bad.code).toBe(2);
  expect(bad.stderr).toContain("memory_mb");
  const missing = await diego(["desire", join(dir, "no-such-file.json")], env);
  expect(missing.code).toBe(2);
  const down = await diego(["get", "x", "--bbs-address", "127.0.0.1:1"], env);
  expect(down.code).toBe(3);
  expect(down.stderr).toContain("127.0.0.1:1");
  const none = await diego(["cancel", "no-such-task"], env);
  expect(none.code).toBe(4);
});

// The action runner on the fake runtime: which log source each action uses, the working directory and
// CF_INSTANCE_* of a run, and the tree's exit status (the same runner runs on Docker in docker-run-step.test.ts).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { ActionSchema } from "@diego/proto";
import { ImageHomes } from "../src/actions/container-files.js";
import { DownloadCache } from "../src/actions/download-cache.js";
import { actionRunner, runTree } from "../src/actions/run-action.js";
import type { StepContext } from "../src/actions/step.js";
import { overriding } from "../src/runtime/container-runtime.js";
import { FakeRuntime } from "../src/runtime/fake-runtime.js";
import { firstFile } from "../src/runtime/tar-files.js";
import { containerSpec } from "./support/harness.js";
import { HttpFixture } from "./support/http-fixtures.js";

type ActionInit = MessageInitShape<typeof ActionSchema>;
const sh = (script: string, extra: Record<string, unknown> = {}): ActionInit => ({
  action: { case: "run", value: { path: "/bin/sh", args: ["-c", script], ...extra } },
});
const action = (init: ActionInit) => create(ActionSchema, init);

let http: HttpFixture;
let cacheDir: string;
let cache: DownloadCache;
let rt: FakeRuntime;
let id: string;
let lines: string[];

beforeAll(async () => {
  http = await HttpFixture.start();
  cacheDir = await mkdtemp(join(tmpdir(), "diego-action-runner-"));
  cache = new DownloadCache(cacheDir, 1024 * 1024);
  await cache.init();
});
afterAll(async () => {
  await http.close();
  await rm(cacheDir, { recursive: true, force: true });
});
beforeEach(async () => {
  rt = new FakeRuntime();
  id = await rt.create(containerSpec({ env: ["CF_INSTANCE_PORT=from-task"], network: true }));
  await rt.start(id);
  lines = [];
});

const ctx = (): StepContext => ({
  signal: new AbortController().signal,
  logSource: "TASK",
  log: (_stream, line, source) => lines.push(`${source}: ${line}`),
});
const runner = () =>
  actionRunner({ runtime: rt, containerId: id, cache, gracefulShutdownMs: 200, instanceIp: "10.0.0.9" });
const read = async (path: string) => (await firstFile(await rt.getArchive(id, path)))?.data.toString();

describe("log_source", () => {
  test.each([
    ["parallel", "P"],
    ["codependent", "C"],
  ])("%s names its subtree's lines and failures", async (kind, source) => {
    const tree = action({
      action: { case: kind as "parallel", value: { logSource: source, actions: [sh("echo hi; exit 1")] } },
    });
    expect((await runner()(tree, ctx()))?.message).toBe(`${source}: Exited with status 1`);
    expect(lines).toEqual([`${source}: hi`, `${source}: Exit status 1`]);
  });

  test("timeout and try name their subtree; a run's own log_source wins", async () => {
    const run = runner();
    const t = action({
      action: { case: "timeout", value: { logSource: "T", timeoutMs: 5000n, action: sh("exit 2") } },
    });
    expect((await run(t, ctx()))?.message).toBe("T: Exited with status 2");
    const own = action({
      action: { case: "try", value: { logSource: "Y", action: sh("echo a", { logSource: "OWN" }) } },
    });
    lines = [];
    expect(await run(own, ctx())).toBeUndefined();
    expect(lines).toEqual(["OWN: a", "OWN: Exit status 0"]);
    const swallowed = action({ action: { case: "try", value: { logSource: "Y", action: sh("exit 4") } } });
    lines = [];
    expect(await run(swallowed, ctx())).toBeUndefined();
    expect(lines).toEqual(["Y: Exit status 4"]);
  });

  test("serial's names its subtree too (Diego ignores it); a child's own still wins", async () => {
    const tree = action({ action: { case: "serial", value: { logSource: "S", actions: [sh("exit 3")] } } });
    expect((await runner()(tree, ctx()))?.message).toBe("S: Exited with status 3");
    const own = action({
      action: {
        case: "serial",
        value: {
          logSource: "S",
          actions: [
            action({ action: { case: "run", value: { path: "/bin/sh", args: ["-c", "exit 5"], logSource: "R" } } }),
          ],
        },
      },
    });
    expect((await runner()(own, ctx()))?.message).toBe("R: Exited with status 5");
  });

  test("download and upload name their progress lines", async () => {
    http.serve("/ls.txt", "content");
    const run = runner();
    const down = action({
      action: { case: "download", value: { from: http.url("/ls.txt"), to: "/tmp/f", artifact: "f", logSource: "DL" } },
    });
    expect(await run(down, ctx())).toBeUndefined();
    const up = action({
      action: { case: "upload", value: { from: "/tmp/f", to: http.url("/ls-up"), artifact: "f", logSource: "UP" } },
    });
    expect(await run(up, ctx())).toBeUndefined();
    expect(lines).toEqual([
      "DL: Downloading f...",
      "DL: Downloaded f (7B)",
      "UP: Uploading f...",
      "UP: Uploaded f (7B)",
    ]);
  });
});

describe("run", () => {
  test("without dir it starts in its user's home; with dir there", async () => {
    const run = runner();
    expect(await run(action(sh("echo x > thingy", { user: "vcap" })), ctx())).toBeUndefined();
    expect(await read("/home/vcap/thingy")).toBe("x\n");
    expect(await run(action(sh("pwd")), ctx())).toBeUndefined();
    expect(await run(action(sh("pwd", { dir: "/tmp" })), ctx())).toBeUndefined();
    expect(lines.filter((l) => l.startsWith("TASK: /"))).toEqual(["TASK: /root", "TASK: /tmp"]);
  });

  test("CF_INSTANCE_* come under the task's and the action's env", async () => {
    const script =
      'echo "$CF_INSTANCE_IP|$CF_INSTANCE_INTERNAL_IP|$CF_INSTANCE_ADDR|$CF_INSTANCE_PORT|$CF_INSTANCE_PORTS"';
    const env = [{ name: "CF_INSTANCE_IP", value: "from-action" }];
    expect(await runner()(action(sh(script, { env })), ctx())).toBeUndefined();
    expect(lines[0]).toBe(`TASK: from-action|${await rt.address(id)}||from-task|[]`);
  });

  test("runTree reports the deciding exit status", async () => {
    const run = runner();
    expect(await runTree(run, action(sh("exit 5")), ctx())).toMatchObject({ exitStatus: 5 });
    expect(await runTree(run, action(sh("true")), ctx())).toEqual({ exitStatus: 0 });
  });
});

describe("home directories known of the image", () => {
  const fresh = async () => {
    const c = await rt.create(containerSpec());
    await rt.start(c);
    return c;
  };
  let passwdReads = 0;
  const counted = () =>
    overriding(rt, {
      getArchive: (c, path) => {
        if (path === "/etc/passwd") passwdReads++;
        return rt.getArchive(c, path);
      },
    });
  const runnerIn = (containerId: string, imageHomes: ImageHomes, pristine: boolean) =>
    actionRunner({ runtime: counted(), containerId, cache, gracefulShutdownMs: 200, imageHomes, pristine });
  const pwd = action(sh("pwd", { user: "vcap" }));

  test("a new container of an image seen before starts in the home without reading /etc/passwd", async () => {
    const homes = new ImageHomes();
    passwdReads = 0;
    expect(await runnerIn(await fresh(), homes, true)(pwd, ctx())).toBeUndefined();
    expect(passwdReads).toBe(1);
    expect(await runnerIn(await fresh(), homes, true)(pwd, ctx())).toBeUndefined();
    expect(passwdReads).toBe(1);
    expect(lines.filter((l) => l.startsWith("TASK: /"))).toEqual(["TASK: /home/vcap", "TASK: /home/vcap"]);
  });

  test("what a task changed before its run is read, and never kept for other containers", async () => {
    const homes = new ImageHomes();
    const changed = runnerIn(await fresh(), homes, true);
    const rewrite = sh("printf 'vcap:x:2000:2000::/tmp:/bin/sh\\n' > /etc/passwd", { dir: "/" });
    expect(await changed(action(rewrite), ctx())).toBeUndefined();
    expect(await changed(pwd, ctx())).toBeUndefined();
    expect(homes.size).toBe(0);
    expect(await runnerIn(await fresh(), homes, true)(pwd, ctx())).toBeUndefined();
    expect(lines.filter((l) => l.startsWith("TASK: /"))).toEqual(["TASK: /tmp", "TASK: /home/vcap"]);
  });

  test("a container that is not new never takes what is known", async () => {
    const homes = new ImageHomes();
    homes.set(await rt.imageOf(id), "vcap", "/elsewhere");
    expect(await runnerIn(id, homes, false)(pwd, ctx())).toBeUndefined();
    expect(lines.filter((l) => l.startsWith("TASK: /"))).toEqual(["TASK: /home/vcap"]);
  });
});

describe("processes at once (--max-task-processes)", () => {
  const limited = (maxProcesses: number) =>
    actionRunner({ runtime: rt, containerId: id, cache, gracefulShutdownMs: 200, maxProcesses });
  const many = (kind: "parallel" | "serial", n: number) =>
    action({ action: { case: kind, value: { actions: Array.from({ length: n }, () => sh("echo ran")) } } });

  test("a run past the limit fails naming it; the others run", async () => {
    const result = await limited(2)(many("parallel", 3), ctx());
    expect(result?.message).toBe(
      "more than 2 processes of the task at once: the cell's limit (--max-task-processes 2)",
    );
    expect(lines.filter((l) => l === "TASK: ran")).toHaveLength(2);
  });

  test("a process that ended frees its place", async () => {
    expect(await limited(1)(many("serial", 3), ctx())).toBeUndefined();
    expect(lines.filter((l) => l === "TASK: ran")).toHaveLength(3);
  });
});

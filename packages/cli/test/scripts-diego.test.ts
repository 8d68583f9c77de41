import { execFile } from "node:child_process";
import { resolve } from "node:path";
import { InProcessCluster } from "@diego/client/testing";

// scripts/diego as a person runs it: a real process, its stdout, stderr and exit code, against the in-process
// cluster (the real BBS, auctioneer and a cell on the fake runtime).
const script = resolve(import.meta.dirname, "../../../scripts/diego");
let bbs: InProcessCluster;

beforeAll(async () => {
  bbs = await InProcessCluster.start();
  await bbs.startCell({ cellId: "cell-1" });
});
afterAll(() => bbs.stop());

function diego(args: string[], options: { stdin?: string; env?: Record<string, string> } = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((done) => {
    const child = execFile(
      script,
      args,
      { env: { ...process.env, DIEGO_BBS_ADDR: bbs.address, ...options.env }, timeout: 60_000 },
      (err, stdout, stderr) => done({ code: err ? (typeof err.code === "number" ? err.code : -1) : 0, stdout, stderr }),
    );
    child.stdin?.end(options.stdin ?? "");
  });
}

const task = (guid: string, script = "printf 42 > /tmp/result") =>
  JSON.stringify({
    task_guid: guid,
    domain: "scripts",
    root_fs: "docker:///diego/busybox",
    action: { run: { path: "/bin/sh", args: ["-c", script] } },
    result_file: "/tmp/result",
    log_source: "DEMO",
  });

test("scripts/diego --help lists the commands", async () => {
  const r = await diego(["--help"]);
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("Commands:");
  expect(r.stdout).toMatch(/^ {2}run \[options\] <file>/m);
  expect(r.stderr).toBe("");
}, 60_000);

test("run exits 0 with the result, with the task's exit status and its failure reason, and a missing BBS is 3 (122 for run)", async () => {
  const ok = await diego(["run", "-"], { stdin: task(`scripts-ok-${process.pid}`) });
  expect(ok).toMatchObject({ code: 0, stdout: "42\n", stderr: "" });
  const failed = await diego(["run", "-"], { stdin: task(`scripts-fail-${process.pid}`, "exit 3") });
  expect(failed).toMatchObject({ code: 3, stdout: "" });
  expect(failed.stderr).toBe(`diego: task scripts-fail-${process.pid} failed on cell-1: DEMO: Exited with status 3\n`);
  const away = await diego(["list"], { env: { DIEGO_BBS_ADDR: "127.0.0.1:1" } });
  expect(away.code).toBe(3);
  expect(away.stderr).toContain("cannot reach the BBS at 127.0.0.1:1");
  const runAway = await diego(["run", "-"], {
    stdin: task(`scripts-away-${process.pid}`),
    env: { DIEGO_BBS_ADDR: "127.0.0.1:1" },
  });
  expect(runAway.code).toBe(122);
}, 60_000);

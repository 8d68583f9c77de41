// The pure parts of processes started by a container's main process (docs/performance.md, "Processes
// started by the main process"): the request's quoting, read back by a real shell, and /proc parsing;
// then on Docker, which processes go that way and what they get.
import { execFileSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DockerEngine } from "../src/runtime/docker-engine.js";
import { DockerRuntime } from "../src/runtime/docker-runtime.js";
import { containerSpec, uniqueId } from "./support/harness.js";
import { CONTRACT_IMAGE } from "./support/runtime-contract.js";
import { startRequest } from "../src/runtime/main-process-files.js";
import { parseProcStat } from "../src/runtime/main-process-starts.js";

const words = ["plain", "", "two words", "it's", "a\nnew line", '$HOME `x` $(y) \\ " *', "'", "\n"];

test("startRequest: one line whose words a shell's eval gives back exactly", () => {
  const line = startRequest(words);
  expect(line).not.toContain("\n");
  // As mainScript does it: NL holds a newline, eval sets the positional parameters.
  const script = `NL='\n'; command eval "set -- $1"; for w in "$@"; do printf '%s\\0' "$w"; done`;
  const out = execFileSync("sh", ["-c", script, "sh", line], { encoding: "utf8" });
  expect(out.split("\0").slice(0, -1)).toEqual(words);
});

const status = (nspid: string) => `Name:\tsh\nState:\tT (stopped)\nNSpid:\t${nspid}\nPPid:\t7\n`;

test.each([
  [
    "a stopped process in a container",
    "1234 (sh) T 1200 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 2 3",
    status("1234\t12"),
    { pid: 1234, state: "T", ppid: 1200, startTime: 98765, nsPid: 12 },
  ],
  [
    "a name with spaces and parentheses",
    "1234 (a (b) c) S 1 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 555 1",
    status("1234"),
    { pid: 1234, state: "S", ppid: 1, startTime: 555, nsPid: 1234 },
  ],
  ["a cut-off stat", "1234 (sh) T 1200", status("1234"), undefined],
])("parseProcStat: %s", (_, stat, st, want) => {
  expect(parseProcStat(1234, stat, st)).toEqual(want);
});

describe("on Docker", () => {
  const helperDir = join(tmpdir(), `diego-starts-helper-${process.pid}`);
  const rt = new DockerRuntime({ helperDir });
  let id: string;
  beforeAll(async () => {
    await new DockerEngine(rt, helperDir).prepareHelper(CONTRACT_IMAGE);
    id = await rt.create(
      containerSpec({
        name: uniqueId("diego-starts"),
        image: CONTRACT_IMAGE,
        labels: { "diego.starts-test": "1" },
        env: ["TASK=1", "SPACED=a b"],
        memoryMb: 64,
      }),
    );
    await rt.start(id);
  }, 60_000);
  afterAll(async () => {
    await rt.remove(id);
    await rm(helperDir, { recursive: true, force: true });
  });

  async function run(user: string, script: string, dir = "") {
    let out = "";
    const h = await rt.exec(
      id,
      { argv: ["/bin/sh", "-c", script], env: ["MINE=2"], user, dir, nofile: 0 },
      { stdout: (c) => (out += c), stderr: (c) => (out += c) },
    );
    return { id: h.id, ...(await h.exited), out };
  }

  test("a root process is started by the main process; another user's, a missing directory's by the engine", async () => {
    expect((await run("", "true")).id).toMatch(/^main:[0-9a-f]{24}:\d+$/);
    expect((await run("root", "true")).id).toMatch(/^main:/);
    expect((await run("nobody", "true")).id).toMatch(/^[0-9a-f]{64}$/);
    const missing = await run("", "pwd", "/no/such/dir");
    expect(missing.id).toMatch(/^[0-9a-f]{64}$/);
    expect(missing.exitCode).toBe(126);
  });

  test("it gets the env an exec gets, its directory, and none of the main process's descriptors", async () => {
    const env = (r: { out: string }) =>
      r.out
        .split("\n")
        .filter((l) => l && !l.startsWith("HOME="))
        .sort();
    const started = await run("", "env");
    const execd = await run("nobody", "env");
    expect(started.id).toMatch(/^main:/);
    expect(env(started)).toEqual(env(execd));
    expect(env(started)).toEqual(expect.arrayContaining(["TASK=1", "SPACED=a b", "MINE=2"]));
    expect((await run("", "pwd", "/tmp")).out).toBe("/tmp\n");
    // The shell's own descriptors (ls runs as its child): its stdin, its two files, nothing else.
    const fds = await run("", "ls /proc/$$/fd; true");
    expect(fds.out.trim().split(/\s+/).sort()).toEqual(["0", "1", "2"]);
  });

  test("exit statuses and signals as an exec's", async () => {
    expect((await run("", "exit 7")).exitCode).toBe(7);
    const h = await rt.exec(
      id,
      { argv: ["/bin/sh", "-c", "sleep 30 & wait"], env: [], user: "", dir: "", nofile: 0 },
      { stdout: () => undefined, stderr: () => undefined },
    );
    expect(h.id).toMatch(/^main:/);
    await h.signal("SIGKILL");
    expect(await h.exited).toEqual({ exitCode: 137, outOfMemory: false });
  });
});

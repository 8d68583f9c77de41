import { TaskState } from "@diego/proto";
import { InProcessCluster } from "@diego/client/testing";
import { runCli } from "../src/cli.js";
import { diego, fakeIo, until } from "./support/fake-io.js";

// Against the one in-process cluster: the real BBS and auctioneer, and two real cells on the fake runtime,
// whose tiny shell runs each task's script. A task naming a cell's id as its placement tag runs there.
let bbs: InProcessCluster;
let n = 0;
const guid = () => `cli-${process.pid}-${++n}`;

/** The task file; by default it says hello and leaves 42 in its result file. */
const taskFile = (taskGuid: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    task_guid: taskGuid,
    domain: "cli-test",
    root_fs: "docker:///diego/busybox",
    env: [{ name: "GREETING", value: "hello" }],
    memory_mb: 64,
    action: { run: { path: "/bin/sh", args: ["-c", "echo $GREETING; printf 42 > /tmp/result"] } },
    result_file: "/tmp/result",
    log_source: "DEMO",
    image_username: "u",
    image_password: "never-shown",
    ...extra,
  });

/** The task file of a task that runs `script` on the cell `cellId`. */
const scriptFile = (taskGuid: string, script: string, cellId = "cell-1", extra: Record<string, unknown> = {}) =>
  taskFile(taskGuid, {
    action: { run: { path: "/bin/sh", args: ["-c", script] } },
    placement_tags: [cellId],
    ...extra,
  });
/** The task file of a task that runs until cancelled, on the cell `cellId`. */
const endlessFile = (taskGuid: string, cellId = "cell-1", extra: Record<string, unknown> = {}) =>
  scriptFile(taskGuid, "sleep 600", cellId, extra);
const isRunning = (g: string) => bbs.waitFor(g, (t) => t?.state === TaskState.RUNNING);

beforeAll(async () => {
  bbs = await InProcessCluster.start();
  for (const cellId of ["cell-1", "cell-2"]) await bbs.startCell({ cellId, optionalPlacementTags: [cellId] });
});

afterAll(() => bbs.stop());

const run = (args: string[], options: Parameters<typeof diego>[2] = {}) => diego(bbs.address, args, options);

describe("help and usage", () => {
  test("--help lists every command, the environment and the exit codes", async () => {
    const r = await run(["--help"]);
    expect(r.code).toBe(0);
    for (const command of ["desire", "run", "get", "list", "cancel", "resolve", "delete", "watch", "logs", "cells"]) {
      expect(r.stdout).toMatch(new RegExp(`^  ${command}\\b`, "m"));
    }
    expect(r.stdout).toContain("DIEGO_BBS_ADDR");
    expect(r.stdout).toContain("DIEGO_TLS_CA_FILE");
    expect(r.stdout).toContain("Exit codes (every command but run):");
    expect(r.stdout).toContain("Exit codes of run");
  });

  test("a command's help shows its options and the global ones", async () => {
    const r = await run(["run", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--logs");
    expect(r.stdout).toContain("--no-wait");
    expect(r.stdout).toContain("--bbs-address");
  });

  test("no command, an unknown command or a missing argument is a usage error (exit 2)", async () => {
    expect((await run([])).code).toBe(2);
    const unknown = await run(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
    const missing = await run(["get"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("missing required argument 'guid'");
  });
});

describe("desire", () => {
  test("submits the task file and prints what was stored", async () => {
    const g = guid();
    const r = await run(["desire", "task.json"], { files: { "task.json": taskFile(g) } });
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toBe(`desired task ${g} in domain cli-test: PENDING\n`);
    expect(await bbs.get(g)).toMatchObject({ taskGuid: g, domain: "cli-test", memoryMb: 64 });
  });

  test("- reads the task from standard input; --json prints it as one JSON object", async () => {
    const g = guid();
    const r = await run(["desire", "-", "--json"], { stdin: taskFile(g) });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    const json = JSON.parse(lines[0]);
    expect(json).toMatchObject({
      task_guid: g,
      domain: "cli-test",
      state: "PENDING",
      memory_mb: 64,
      image_username: "u",
    });
    expect(typeof json.created_at).toBe("number");
    expect(lines[0]).toMatch(/"created_at":\d{19}\b/); // the exact int64, not a string
    expect(json).not.toHaveProperty("image_password");
    expect(r.stdout).not.toContain("never-shown");
  });

  test("a bad file names the file and each bad field (exit 2) and stores nothing", async () => {
    const g = guid();
    const r = await run(["desire", "bad.json"], {
      files: { "bad.json": taskFile(g, { memory_mb: "lots", root_fs: "", colour: 1 }) },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("diego: task file bad.json: invalid request:");
    expect(r.stderr).toContain("  memory_mb: expected number (int32)");
    expect(r.stderr).toContain("  colour: unknown field");
    expect(await bbs.get(g)).toBeUndefined();

    const invalid = await run(["desire", "bad.json"], {
      files: { "bad.json": taskFile(g, { root_fs: "ftp://x", cpu_weight: 101 }) },
    });
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toContain("  root_fs: ");
    expect(invalid.stderr).toContain("  cpu_weight: must be between 0 and 100");

    const notJson = await run(["desire", "-"], { stdin: '{"task_guid": "x",\n}' });
    expect(notJson.code).toBe(2);
    expect(notJson.stderr).toMatch(/task file standard input: not valid JSON: .* at line 2 column 1/);

    const missing = await run(["desire", "/nonexistent/task.json"]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("diego: cannot read task file /nonexistent/task.json: no such file\n");
  });

  test("a guid that exists already is a conflict (exit 5)", async () => {
    const g = guid();
    expect((await run(["desire", "-"], { stdin: taskFile(g) })).code).toBe(0);
    const again = await run(["desire", "-"], { stdin: taskFile(g) });
    expect(again.code).toBe(5);
    expect(again.stderr).toContain("already exists");
  });
});

describe("get, list, cancel, resolve, delete", () => {
  test("get shows the task; --json the whole task; a missing one is exit 4", async () => {
    const g = guid();
    await run(["desire", "-"], { stdin: taskFile(g, { placement_tags: ["cell-1"] }) });
    await bbs.completed(g);
    const human = await run(["get", g]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(new RegExp(`^task_guid: +${g}$`, "m"));
    expect(human.stdout).toMatch(/^state: +COMPLETED$/m);
    expect(human.stdout).toMatch(/^cell_id: +cell-1$/m);
    expect(human.stdout).toMatch(/^result: +42$/m);
    expect(human.stdout).toMatch(/^action: +run \/bin\/sh -c "echo \$GREETING; printf 42 > \/tmp\/result"$/m);

    const json = JSON.parse((await run(["get", g, "--json"])).stdout);
    expect(json).toMatchObject({ task_guid: g, state: "COMPLETED", cell_id: "cell-1", result: "42" });
    expect(json.failed).toBeUndefined(); // false is the default and left out, as docs/contract.md allows

    const missing = await run(["get", "no-such-task"]);
    expect(missing.code).toBe(4);
    expect(missing.stderr).toBe('diego: task "no-such-task" not found\n');
  });

  test("list prints a table, filters by domain, cell and state, and --json prints one task per line", async () => {
    const domain = `list-${guid()}`;
    const [a, b, c] = [guid(), guid(), guid()];
    await run(["desire", "-"], { stdin: endlessFile(a, "cell-2", { domain }) });
    await run(["desire", "-"], { stdin: endlessFile(b, "cell-1", { domain }) });
    await run(["desire", "-"], { stdin: scriptFile(c, "exit 2", "cell-2", { domain }) });
    await isRunning(a);
    await isRunning(b);
    await bbs.completed(c);

    const table = await run(["list", "--domain", domain]);
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^TASK GUID +DOMAIN +STATE +CELL +AGE +LABELS +OUTCOME$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([a, b, c]);
    expect(lines[3]).toMatch(/COMPLETED +cell-2 +\d+s +- +failed: DEMO: Exited with status 2$/);

    const guidsOf = async (args: string[]) =>
      (await run(["list", "--domain", domain, "--json", ...args])).stdout
        .trimEnd()
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l).task_guid);
    expect(await guidsOf([])).toEqual([a, b, c]);
    expect(await guidsOf(["--cell", "cell-1"])).toEqual([b]);
    expect(await guidsOf(["--state", "running"])).toEqual([a, b]);
    expect(await guidsOf(["--state", "COMPLETED"])).toEqual([c]);
    expect((await run(["cancel", a, b])).code).toBe(0);

    const none = await run(["list", "--domain", `${domain}-empty`]);
    expect(none).toMatchObject({ code: 0, stdout: "", stderr: "no tasks\n" });

    const badState = await run(["list", "--state", "sleeping"]);
    expect(badState.code).toBe(2);
    expect(badState.stderr).toContain("state: must be one of PENDING, CLAIMED, RUNNING, COMPLETED, RESOLVING");
  });

  test("cancel, resolve and delete take a task out, and refuse the wrong state with exit 5", async () => {
    const g = guid();
    await run(["desire", "-"], { stdin: endlessFile(g) });
    await isRunning(g);
    const early = await run(["resolve", g]);
    expect(early.code).toBe(5);
    expect(early.stderr).toBe(`diego: resolve ${g}: Cannot transition from RUNNING to RESOLVING\n`);

    expect(await run(["cancel", g])).toMatchObject({ code: 0, stdout: `cancelled task ${g}\n` });
    expect(await bbs.get(g)).toMatchObject({
      state: TaskState.COMPLETED,
      failed: true,
      failureReason: "task was cancelled",
    });
    expect((await run(["cancel", g])).code).toBe(5);
    expect(await run(["resolve", g, "--json"])).toMatchObject({
      code: 0,
      stdout: `{"task_guid":"${g}","status":"resolving"}\n`,
    });
    expect(await run(["delete", g])).toMatchObject({ code: 0, stdout: `deleted task ${g}\n` });
    expect(await bbs.get(g)).toBeUndefined();
    expect((await run(["delete", g])).code).toBe(4);
  });

  test("several guids are handled one by one; the exit code is the first failure's", async () => {
    const [a, b] = [guid(), guid()];
    for (const g of [a, b]) await run(["desire", "-"], { stdin: endlessFile(g) });
    const r = await run(["cancel", a, "no-such-task", b]);
    expect(r.code).toBe(4);
    expect(r.stdout).toBe(`cancelled task ${a}\ncancelled task ${b}\n`);
    expect(r.stderr).toContain('cancel no-such-task: task "no-such-task" not found');
  });
});

describe("run", () => {
  test("--wait prints the result, exits 0 and leaves nothing behind", async () => {
    const g = guid();
    const r = await run(["run", "-", "--wait"], { stdin: taskFile(g) });
    expect(r).toMatchObject({ code: 0, stdout: "42\n", stderr: "" });
    expect(await bbs.get(g)).toBeUndefined();
  });

  test("a task whose run action exited non-zero: diego exits with its status, the reason on stderr", async () => {
    const g = guid();
    const r = await run(["run", "-"], { stdin: scriptFile(g, "exit 3", "cell-2") });
    expect(r.code).toBe(3);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`diego: task ${g} failed on cell-2: DEMO: Exited with status 3\n`);
    expect(await bbs.get(g)).toBeUndefined();
  });

  test("--json prints the completed task as one JSON object", async () => {
    const g = guid();
    const r = await run(["run", "-", "--json"], { stdin: taskFile(g, { placement_tags: ["cell-1"] }) });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ task_guid: g, state: "COMPLETED", result: "42", cell_id: "cell-1" });
  });

  test("--logs prints the task's output as it runs, then the result", async () => {
    const g = guid();
    const r = await run(["run", "-", "--logs"], {
      stdin: scriptFile(g, "echo hello; echo oops >&2; printf 42 > /tmp/result"),
    });
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} \[DEMO\/0\] OUT hello$/);
    expect(lines[1]).toMatch(/\[DEMO\/0\] ERR oops$/);
    expect(lines[2]).toMatch(/\[DEMO\/0\] OUT Exit status 0$/); // the cell's own last line, as Diego's
    expect(lines[3]).toBe("42");
  });

  test("--no-wait only desires; --no-resolve leaves the completed task", async () => {
    const g = guid();
    const r = await run(["run", "-", "--no-wait"], { stdin: taskFile(g) });
    expect(r).toMatchObject({ code: 0, stdout: `desired task ${g} in domain cli-test: PENDING\n` });

    const kept = guid();
    expect(
      (await run(["run", "-", "--no-resolve"], { stdin: scriptFile(kept, "printf kept > /tmp/result") })).code,
    ).toBe(0);
    expect(await bbs.get(kept)).toMatchObject({ state: TaskState.COMPLETED, result: "kept" });
  });

  test("on a terminal a progress line shows the state while the task is pending or running", async () => {
    const g = guid();
    const r = await run(["run", "-"], { stdin: scriptFile(g, "sleep 1; printf 42 > /tmp/result"), tty: true });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("42\n");
    expect(r.stderr).toContain(`${g} PENDING`);
    expect(r.stderr).toContain(`${g} RUNNING on cell-1`);
    expect(r.stderr).toContain("\r\x1b[K");
    expect(r.stderr).toMatch(new RegExp(`task ${g} succeeded on cell-1 in [\\d.]+m?s\\n$`));
  });

  test("Ctrl-C cancels the task (exit 130); the cancelled task is cleaned up", async () => {
    const g = guid(); // it runs until cancelled
    const f = fakeIo({ env: { DIEGO_BBS_ADDR: bbs.address }, stdin: endlessFile(g) });
    const running = runCli(["run", "-", "--poll-interval", "100ms"], f.io);
    await until(() => f.listening()); // even before the BBS has the task, Ctrl-C means: cancel it
    f.interrupt();
    expect(await running).toBe(130);
    expect(f.stderr()).toContain(`cancelling task ${g}`);
    expect(f.stderr()).toMatch(new RegExp(`task ${g} failed( on cell-1)?: task was cancelled`));
    expect(await bbs.get(g)).toBeUndefined();
  });

  test("a second Ctrl-C stops waiting (exit 130) and leaves the task in the BBS", async () => {
    const g = guid();
    const f = fakeIo({ env: { DIEGO_BBS_ADDR: bbs.address }, stdin: endlessFile(g) });
    const running = runCli(["run", "-"], f.io);
    await until(async () => (await bbs.get(g)) !== undefined && f.listening());
    f.interrupt();
    f.interrupt();
    expect(await running).toBe(130);
    expect(f.stderr()).toContain(`stopped waiting for task ${g} (see: diego get ${g})`);
    expect(await bbs.get(g)).toBeDefined();
  });

  test("--poll-interval must be a duration (run's usage error: 121)", async () => {
    const r = await run(["run", "-", "--poll-interval", "soon"], { stdin: taskFile(guid()) });
    expect(r.code).toBe(121);
    expect(r.stderr).toContain("--poll-interval: must be a duration");
  });
});

describe("watch, logs, cells", () => {
  test("watch prints each event of its domain until Ctrl-C, which exits 0; --json one event per line", async () => {
    const domain = `watch-${guid()}`;
    for (const json of [false, true]) {
      const g = guid();
      const f = fakeIo({ env: { DIEGO_BBS_ADDR: bbs.address } });
      // No other watcher is left (the previous round's has gone), then ours subscribes.
      await until(() => bbs.watchers === 0);
      const watching = runCli(["watch", "--domain", domain, ...(json ? ["--json"] : [])], f.io);
      await until(() => bbs.watchers > 0);
      await run(["desire", "-"], { stdin: taskFile(guid(), { domain: "elsewhere" }) });
      await run(["desire", "-"], { stdin: endlessFile(g, "cell-1", { domain }) });
      await isRunning(g);
      await run(["cancel", g]);
      await run(["resolve", g]);
      await run(["delete", g]);
      await until(() => /REMOVED|"removed"/.test(f.stdout()));
      f.interrupt();
      expect(await watching).toBe(0);
      const lines = f.stdout().trimEnd().split("\n");
      if (json) {
        // Every stream opens with the live marker; the task's events follow.
        const events = lines.map((l) => JSON.parse(l)).filter((e) => !("live" in e));
        expect(Object.keys(events[0])).toContain("created");
        expect(events[0].created.task).toMatchObject({ task_guid: g, state: "PENDING" });
        expect(typeof events[0].created.task.created_at).toBe("number");
        expect(events[1].changed.after).toMatchObject({ state: "CLAIMED", cell_id: "cell-1" });
        expect(events[2].changed.after).toMatchObject({ state: "RUNNING", cell_id: "cell-1" });
        expect(events[5].removed.task.task_guid).toBe(g);
        expect(f.stdout()).not.toContain("never-shown");
      } else {
        expect(lines[0]).toMatch(new RegExp(`CREATED  ${g}  domain=${domain}  PENDING$`));
        expect(lines[1]).toMatch(new RegExp(`CHANGED  ${g}  PENDING -> CLAIMED  cell=cell-1$`));
        expect(lines[2]).toMatch(new RegExp(`CHANGED  ${g}  CLAIMED -> RUNNING  cell=cell-1$`));
        expect(lines[3]).toMatch(
          new RegExp(`CHANGED  ${g}  RUNNING -> COMPLETED  cell=cell-1  failed: task was cancelled$`),
        );
        expect(lines[4]).toMatch(/COMPLETED -> RESOLVING/);
        expect(lines[5]).toMatch(new RegExp(`REMOVED  ${g}$`));
      }
    }
  });

  test("watch exits 3 when the BBS stays away past --unreachable-timeout", async () => {
    const other = await InProcessCluster.start({ auctioneer: false });
    const f = fakeIo({ env: { DIEGO_BBS_ADDR: other.address } });
    const watching = runCli(["watch", "--unreachable-timeout", "1s"], f.io);
    await until(() => other.watchers > 0);
    await other.stop();
    expect(await watching).toBe(3);
    expect(f.stderr()).toContain(other.address);
  });

  test("logs prints the output so far; --follow until the task completes; --json log lines", async () => {
    const g = guid();
    await run(["desire", "-"], { stdin: scriptFile(g, "echo one; echo two >&2; sleep 2; echo three") });
    let sofar = await run(["logs", g]);
    await until(async () => (sofar = await run(["logs", g])).stdout.includes("two"));
    expect(sofar.stdout).toMatch(/^\S+ \[DEMO\/0\] OUT one\n\S+ \[DEMO\/0\] ERR two\n/);

    const f = fakeIo({ env: { DIEGO_BBS_ADDR: bbs.address } });
    const following = runCli(["logs", g, "--follow", "--json"], f.io);
    expect(await following).toBe(0);
    const lines = f
      .stdout()
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.message, l.stream])).toEqual([
      ["one", "STDOUT"],
      ["two", "STDERR"],
      ["three", "STDOUT"],
      ["Exit status 0", "STDOUT"],
    ]);
    expect(typeof lines[0].timestamp).toBe("number");
    expect((await run(["logs", "no-such-task"])).code).toBe(4);
  });

  test("cells lists the live cells with available/total capacity; --json one cell per line", async () => {
    // A cluster of its own with two cells; cell-2 holds room for a task that runs until cancelled.
    const listed = await InProcessCluster.start();
    const one = await listed.startCell({
      cellId: "cell-1",
      zone: "z1",
      stacks: [],
      memoryMb: 2048,
      diskMb: 4096,
      maxContainers: 100,
    });
    const two = await listed.startCell({
      cellId: "cell-2",
      zone: "z1",
      optionalPlacementTags: ["cell-2"],
      memoryMb: 2048,
      diskMb: 4096,
      maxContainers: 100,
    });
    await diego(listed.address, ["desire", "-"], {
      stdin: scriptFile("cells-busy", "sleep 600", "cell-2", { memory_mb: 1024, disk_mb: 96 }),
    });
    await listed.waitFor("cells-busy", (t) => t?.state === TaskState.RUNNING);
    await until(async () => (await listed.presence("cell-2"))?.available?.memoryMb === 1024);
    const run = (args: string[]) => diego(listed.address, args);
    const r = await run(["cells"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^CELL ID +ADDRESS +ZONE +MEMORY MB +DISK MB +CONTAINERS +STACKS +ROOTFS +TAGS$/);
    expect(lines[1]).toMatch(
      new RegExp(`^cell-1 +${one.running.address} +z1 +2048/2048 +4096/4096 +100/100 +- +docker,preloaded:busybox +-$`),
    );
    expect(lines[2]).toMatch(
      new RegExp(
        `^cell-2 +${two.running.address} +z1 +1024/2048 +4000/4096 +99/100 +linux +docker,preloaded:busybox +cell-2\\?$`,
      ),
    );
    const json = (await run(["cells", "--json"])).stdout
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(json[1]).toMatchObject({
      cell_id: "cell-2",
      available: { memory_mb: 1024 },
      rootfs_providers: [{ scheme: "docker" }, { scheme: "preloaded", names: ["busybox"] }],
    });
    await listed.stop();
  });
});

describe("connection errors", () => {
  test("an unreachable BBS is exit 3 and the message names the address", async () => {
    const r = await diego("127.0.0.1:1", ["list"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("diego: cannot reach the BBS at 127.0.0.1:1");
    expect(r.stderr).toContain("DIEGO_BBS_ADDR");
    const flag = await diego(bbs.address, ["get", "x", "--bbs-address", "127.0.0.1:2", "--timeout", "3s"]);
    expect(flag.code).toBe(3);
    expect(flag.stderr).toContain("127.0.0.1:2");
  });

  test("several BBS addresses: the CLI fails over past one that is down", async () => {
    const r = await diego(`127.0.0.1:1,${bbs.address}`, ["list"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect((await run(["list", "--bbs-address", "127.0.0.1:1,nowhere"])).stderr).toContain(
      "--bbs-address: must be host:port or several, comma-separated",
    );
  });

  test("bad connection settings are usage errors that name the flag", async () => {
    const partial = await run(["list", "--ca-file", "/tmp/ca.crt"]);
    expect(partial.code).toBe(2);
    expect(partial.stderr).toContain("--cert-file: is required for mutual TLS");
    expect(partial.stderr).toContain("--key-file: is required for mutual TLS");
    const env = await run(["list"], { env: { DIEGO_TLS_CERT_FILE: "/tmp/x.crt" } });
    expect(env.code).toBe(2);
    expect(env.stderr).toContain("--ca-file: is required for mutual TLS (or DIEGO_TLS_CA_FILE)");
    const files = await run([
      "list",
      "--ca-file",
      "/nope/ca.crt",
      "--cert-file",
      "/nope/c.crt",
      "--key-file",
      "/nope/c.key",
    ]);
    expect(files.code).toBe(2);
    expect(files.stderr).toContain("cannot read TLS CA file /nope/ca.crt");
    expect((await run(["list", "--bbs-address", "nowhere"])).stderr).toContain("--bbs-address: must be host:port");
    expect((await run(["list", "--timeout", "soon"])).code).toBe(2);
  });
});

describe("outcome, labels, paging, resume, escaping", () => {
  test("run exits with the task's exit status, or 124 without one; its own errors are 122 and 123", async () => {
    const exited = guid();
    const r = await run(["run", "-", "--json"], { stdin: scriptFile(exited, "exit 7") });
    expect(r.code).toBe(7);
    const outcome = JSON.parse(r.stdout);
    // The fake runtime measures 1 MiB of memory and 1 ms of CPU per process (one here: sh).
    expect(outcome).toMatchObject({
      failed: true,
      failure_reason: "DEMO: Exited with status 7",
      failure_kind: "EXITED",
      exit_status: 7,
      usage: { peak_memory_bytes: 1024 * 1024, cpu_time_ns: 1_000_000 },
    });
    for (const t of ["claimed_at", "started_at", "completed_at"]) expect(typeof outcome[t]).toBe("number");

    const timedOut = guid();
    const slow = { run: { path: "/bin/sh", args: ["-c", "sleep 600"] } };
    const t = await run(["run", "-"], {
      stdin: taskFile(timedOut, { action: { timeout: { action: slow, timeout_ms: 1000 } } }),
    });
    expect(t.code).toBe(124);
    expect(t.stderr).toContain("exceeded 1s timeout");

    const dup = guid();
    await run(["desire", "-"], { stdin: taskFile(dup) });
    expect((await run(["run", "-"], { stdin: taskFile(dup) })).code).toBe(123);
    const away = await diego("127.0.0.1:1", ["run", "-"], { stdin: taskFile(guid()) });
    expect(away.code).toBe(122);
    expect((await run(["run"])).code).toBe(121);
  });

  test("get shows the outcome fields and the labels", async () => {
    const g = guid();
    await run(["desire", "-"], { stdin: scriptFile(g, "exit 2", "cell-1", { labels: { team: "red", tier: "1" } }) });
    await bbs.completed(g);
    const human = (await run(["get", g])).stdout;
    expect(human).toMatch(/^labels: +team=red,tier=1$/m);
    expect(human).toMatch(/^failure_kind: +EXITED$/m);
    expect(human).toMatch(/^exit_status: +2$/m);
    expect(human).toMatch(/^usage: +peak memory 1\.0 MiB, cpu 1ms$/m);
    for (const t of ["claimed_at", "started_at", "completed_at"])
      expect(human).toMatch(new RegExp(`^${t}: +\\d{4}-\\d\\d-\\d\\dT`, "m"));
  });

  test("list reads past the first page, selects on every --label and shows the labels", async () => {
    const domain = `many-${guid()}`;
    // A cluster without an auctioneer: the tasks only wait PENDING, so that 520 of them do not load the cells.
    const idle = await InProcessCluster.start({ auctioneer: false });
    const run = (args: string[]) => diego(idle.address, args);
    const { DiegoClient } = await import("@diego/client");
    const client = new DiegoClient({ address: idle.address });
    try {
      const count = 520; // more than one default page (500)
      for (let i = 0; i < count; i++)
        await client.desire({
          taskGuid: `${domain}-${i}`,
          domain,
          rootFs: "docker:///diego/busybox",
          action: { action: { case: "run", value: { path: "/bin/true" } } },
          labels: { parity: i % 2 ? "odd" : "even", ...(i === 3 ? { special: "yes" } : {}) },
        });
      const all = (await run(["list", "--domain", domain, "--json"])).stdout.trimEnd().split("\n");
      expect(new Set(all.map((l) => JSON.parse(l).task_guid)).size).toBe(count);
      const odd = (await run(["list", "--domain", domain, "--label", "parity=odd", "--json"])).stdout
        .trimEnd()
        .split("\n");
      expect(odd).toHaveLength(count / 2);
      const table = await run(["list", "--domain", domain, "--label", "parity=odd", "--label", "special=yes"]);
      expect(table.stdout.trimEnd().split("\n").slice(1)).toEqual([
        expect.stringMatching(new RegExp(`^${domain}-3 .* parity=odd,special=yes$`)),
      ]);
      const bad = await run(["list", "--label", "nokey"]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toContain('--label: must be key=value (got "nokey")');
    } finally {
      client.close();
      await idle.stop();
    }
  });

  test("watch --label resumes after its stream is cut: no event is missed or printed twice", async () => {
    const proxy = await bbs.proxy();
    const f = fakeIo({ env: { DIEGO_BBS_ADDR: proxy.address } });
    const watching = runCli(["watch", "--label", "team=blue", "--json"], f.io);
    await until(() => proxy.open("WatchTasks") === 1);
    const guids = [guid(), guid(), guid()];
    await run(["desire", "-"], { stdin: taskFile(guids[0], { labels: { team: "blue" } }) });
    await run(["desire", "-"], { stdin: taskFile(guid(), { labels: { team: "green" } }) });
    await until(() => f.stdout().includes(guids[0]));
    proxy.cut("WatchTasks");
    await run(["desire", "-"], { stdin: taskFile(guids[1], { labels: { team: "blue" } }) });
    await until(() => proxy.open("WatchTasks") === 1);
    proxy.cut("WatchTasks");
    await run(["desire", "-"], { stdin: taskFile(guids[2], { labels: { team: "blue" } }) });
    await until(() => f.stdout().includes(guids[2]));
    f.interrupt();
    expect(await watching).toBe(0);
    const events = f
      .stdout()
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(events[0]).toHaveProperty("live");
    // The blue tasks' creations, in order (their cells' changes come between), each event once.
    expect(events.filter((e) => e.created).map((e) => e.created.task.task_guid)).toEqual(guids);
    expect(new Set(f.stdout().split("\n")).size).toBe(f.stdout().split("\n").length);
    expect(f.stderr()).toContain("the event stream was cut");
  });

  test("control characters from the server never reach the terminal", async () => {
    const evil = "\u001b]0;pwned\u0007\u001b[2J\r";
    // The task writes them to its output and its result file.
    const evilFile = (g: string, extra: Record<string, unknown> = {}) =>
      scriptFile(g, 'echo "$EVIL"; printf "42$EVIL" > /tmp/result', "cell-1", {
        env: [{ name: "EVIL", value: evil }],
        ...extra,
      });
    const tty = await run(["run", "-", "--logs"], { stdin: evilFile(guid(), { labels: { x: evil } }), tty: true });
    // Into a pipe or a file, the task's result is its own data, byte for byte.
    expect((await run(["run", "-"], { stdin: evilFile(guid()) })).stdout).toBe(`42${evil}\n`);
    // The task's own output and result: escaped on a terminal.
    expect(tty.stdout).toContain("OUT \\e]0;pwned\\x07\\e[2J");
    expect(tty.stdout).toContain("42\\e]0;pwned");
    // eslint-disable-next-line no-control-regex -- the point of the check
    const raw = /[\u0007\u001b\r]/;
    expect(tty.stdout).not.toMatch(raw);
    // Only the progress line's own erase sequence may be on stderr.
    expect(tty.stderr.replaceAll("\r\u001b[K", "")).not.toMatch(raw);

    const labelled = guid();
    await run(["desire", "-"], { stdin: taskFile(labelled, { labels: { x: evil }, annotation: evil }) });
    for (const args of [
      ["get", labelled],
      ["list", "--label", `x=${evil}`],
      ["get", labelled, "--json"],
    ]) {
      const r = await run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toMatch(raw);
      expect(r.stdout).toContain(labelled);
    }
  });
});

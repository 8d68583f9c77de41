import { execFile, spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { TaskState } from "@diego/proto";
import { Cluster, eventually, fixtureTask, freePort, REPO_ROOT, uniqueGuid, waitForState } from "../src/index.js";

// The cell's Debian package (scripts/build-deb), installed on this machine with dpkg -i: its unit
// passes systemd-analyze verify, and its agent, started from the unit's own ExecStart line (systemd
// itself does not run here) with the installed configuration, runs a task of a local cluster; then
// the package is purged (docs/deployment.md, "Cells on plain hosts").
const run = promisify(execFile);
const unitFile = "/lib/systemd/system/diego-cell.service";
let cluster: Cluster;
let agent: ChildProcess | undefined;
let agentLog = "";

beforeAll(async () => {
  const { stdout } = await run(`${REPO_ROOT}/scripts/build-deb`, ["--out", `${REPO_ROOT}/dist`], {
    maxBuffer: 64 << 20,
  });
  const deb = stdout.trim().split("\n").pop()!;
  await run("dpkg", ["-i", deb]);
  cluster = await Cluster.start({ cells: [] });
}, 600_000);

afterAll(async () => {
  if (agent && agent.exitCode === null) agent.kill("SIGKILL");
  await cluster?.stop();
  await run("dpkg", ["--purge", "diego-cell"]).catch(() => undefined);
}, 120_000);

test("the installed unit verifies, and its ExecStart runs a cell that completes a task, then drains on SIGTERM", async () => {
  await run("systemd-analyze", ["verify", unitFile]);
  const unit = readFileSync(unitFile, "utf8");
  expect(unit).toMatch(/^After=.*docker\.service/m);
  expect(unit).toMatch(/^Restart=on-failure$/m);
  expect(unit).toMatch(/^KillSignal=SIGTERM$/m);
  const config = readFileSync("/etc/diego/cell.json", "utf8");
  expect(config).toMatch(/"drainTimeout"/);
  expect(config).not.toContain("@HOSTNAME@");

  const [command, ...args] = unit.match(/^ExecStart=(.*)$/m)![1]!.split(/\s+/);
  const cellId = `deb-cell-${process.pid}`;
  const status = `127.0.0.1:${await freePort()}`;
  // What an operator writes in /etc/diego/cell.json, given here through the environment (which wins).
  agent = spawn(command!, args, {
    env: {
      ...process.env,
      NODE_OPTIONS: "",
      DIEGO_CELL_CELL_ID: cellId,
      DIEGO_CELL_BBS_ADDRESS: cluster.bbsAddress,
      DIEGO_CELL_LISTEN_ADDRESS: `127.0.0.1:${await freePort()}`,
      DIEGO_CELL_STATUS_ADDRESS: status,
      DIEGO_CELL_MEMORY_MB: "1024",
      DIEGO_CELL_DISK_MB: "2048",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  agent.stdout!.on("data", (d: Buffer) => (agentLog += d.toString()));
  agent.stderr!.on("data", (d: Buffer) => (agentLog += d.toString()));
  const exited = new Promise<number | null>((resolve) => agent!.once("exit", resolve));

  await eventually(
    `the packaged cell to be listed\n${agentLog.slice(-2000)}`,
    async () => {
      if (agent!.exitCode !== null) throw new Error(`the agent exited:\n${agentLog.slice(-3000)}`);
      return (await cluster.cellService.listCells({})).cells.some((c) => c.cellId === cellId);
    },
    90_000,
  );
  await eventually("the packaged cell to be ready", async () => (await fetch(`http://${status}/readyz`)).ok, 60_000);

  const guid = uniqueGuid("deb");
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid));
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]).catch((err: Error) => {
    throw new Error(`${err.message}\n${agentLog.slice(-3000)}\n${cluster.logs()}`);
  });
  expect(task).toMatchObject({ failed: false, result: "42", cellId });

  agent.kill("SIGTERM");
  expect(await exited).toBe(0);
});

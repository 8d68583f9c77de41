// The BBS under benchmark: a process of its own (node + tsx, as scripts/dev runs it), its RSS and CPU.
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "@diego/testing";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

export interface BbsProcess {
  child: ChildProcess;
  address: string;
  /** host:port of its /metrics. */
  statusAddress: string;
}

/**
 * Starts a BBS on etcd under `prefix` and waits until it is ready. BENCH_BBS_NODE_ARGS adds node
 * flags (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile it).
 */
export async function spawnBbs(
  etcdUrl: string,
  prefix: string,
  auctioneerAddress: string,
  extra: string[],
): Promise<BbsProcess> {
  const port = await freePort();
  const statusPort = await freePort();
  const address = `127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      ...(process.env.BENCH_BBS_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
      "--import",
      "tsx",
      "packages/bbs/src/main.ts",
      "--etcd-endpoints",
      etcdUrl,
      "--etcd-prefix",
      prefix,
      "--listen-address",
      address,
      "--status-address",
      `127.0.0.1:${statusPort}`,
      "--auctioneer-address",
      auctioneerAddress,
      "--log-level",
      "warn",
      ...extra,
    ],
    { cwd: root, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, NODE_OPTIONS: "" } },
  );
  const until = Date.now() + 300_000;
  for (;;) {
    try {
      if ((await fetch(`http://127.0.0.1:${statusPort}/readyz`)).ok) break;
    } catch {
      // not up yet
    }
    if (child.exitCode !== null) throw new Error(`the BBS exited with ${child.exitCode}`);
    if (Date.now() > until) throw new Error("the BBS did not become ready");
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, address, statusAddress: `127.0.0.1:${statusPort}` };
}

/** The BBS's etcd write transactions so far (its TaskStoreTxnTasks histogram): count and tasks in them. */
export async function txnTotals(statusAddress: string): Promise<{ txns: number; tasks: number; seconds: number }> {
  const text = await (await fetch(`http://${statusAddress}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+]+)$`, "m").exec(text)?.[1] ?? 0);
  return {
    txns: value("TaskStoreTxnTasks_count"),
    tasks: value("TaskStoreTxnTasks_sum"),
    seconds: value("TaskStoreTxnSeconds_sum"),
  };
}

export async function stopBbs(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

export function rssMib(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/**
 * CPU time (user + system) the process has used so far, in ms: what process.cpuUsage() reports inside
 * it, read from /proc so that the BBS needs no hook for it. Clock ticks are 1/100 s on Linux.
 */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 and 15 of stat (utime, stime); the slice starts at field 3.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

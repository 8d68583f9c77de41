import { readFile } from "node:fs/promises";

/**
 * Host-side views of the processes a container's main process starts (main-process-files.ts, `run`;
 * docs/performance.md, "Processes started by the main process"): found and watched through the host's
 * /proc (the cell runs in the host's pid namespace, as root), each known by its host pid and start time
 * so that a pid the host reused is never taken for it.
 */

/** One process as /proc/<pid>/stat and status tell it. */
export interface ProcStat {
  pid: number;
  /** R, S, D, T (stopped), Z (exited, not reaped yet), ... */
  state: string;
  ppid: number;
  /** Clock ticks after boot: with the pid, names the process for its whole life. */
  startTime: number;
  /** Its pid in the innermost pid namespace it is in (NSpid's last field). */
  nsPid: number;
}

/** The process's stat, or undefined when there is none. */
export async function procStat(pid: number): Promise<ProcStat | undefined> {
  try {
    const [stat, status] = await Promise.all([
      readFile(`/proc/${pid}/stat`, "utf8"),
      readFile(`/proc/${pid}/status`, "utf8"),
    ]);
    return parseProcStat(pid, stat, status);
  } catch {
    return undefined;
  }
}

/** Pure: /proc/<pid>/stat and /proc/<pid>/status as a ProcStat. */
export function parseProcStat(pid: number, stat: string, status: string): ProcStat | undefined {
  const now = parseStat(stat);
  const ns = /^NSpid:\s*(.*)$/m.exec(status)?.[1].trim().split(/\s+/);
  return now && { pid, ...now, nsPid: Number(ns?.[ns.length - 1] ?? pid) };
}

/** Pure: the state, parent and start time of /proc/<pid>/stat. */
function parseStat(stat: string): Pick<ProcStat, "state" | "ppid" | "startTime"> | undefined {
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const startTime = Number(rest[19]);
  if (!rest[0] || !Number.isFinite(startTime)) return undefined;
  return { state: rest[0], ppid: Number(rest[1]), startTime };
}

/**
 * The state of `p` now (its /proc/<pid>/stat alone: what a poll needs), or "gone" once it is not the
 * same process (pid and start time) or has exited.
 */
async function stateOf(p: ProcStat): Promise<string> {
  const now = parseStat(await readFile(`/proc/${p.pid}/stat`, "utf8").catch(() => ""));
  if (!now || now.startTime !== p.startTime || now.state === "Z" || now.state === "X") return "gone";
  return now.state;
}

/** Whether `p` still runs: the same process (pid and start time), not exited. */
export async function stillRuns(p: ProcStat): Promise<boolean> {
  return (await stateOf(p)) !== "gone";
}

async function children(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, "utf8").catch(() => "");
  return text.trim().split(/\s+/).filter(Boolean).map(Number);
}

/** The host pid of a container's main process: the first child of its init (host pid `initPid`). */
export async function mainProcessOf(initPid: number): Promise<number | undefined> {
  return (await children(initPid))[0];
}

/**
 * The process with pid `nsPid` in the container among the grandchildren of its main process (host pid
 * `mainPid`): the main process forks a child per start, which starts the program. Undefined when it is
 * not (or no longer) there.
 */
export async function findStarted(mainPid: number, nsPid: number): Promise<ProcStat | undefined> {
  for (const child of await children(mainPid)) {
    for (const grandchild of await children(child)) {
      const p = await procStat(grandchild);
      if (p && p.nsPid === nsPid && p.ppid === child) return p;
    }
  }
  return undefined;
}

/**
 * Waits until `p` has stopped itself (heldArgv) or is gone, polling its stat every 1, 2, 4 ... up to
 * 10 ms, at most `deadlineMs`: "held", "gone" or "late".
 */
export async function untilHeld(p: ProcStat, deadlineMs = 5_000): Promise<"held" | "gone" | "late"> {
  const until = Date.now() + deadlineMs;
  for (let wait = 1; ; wait = Math.min(wait * 2, 10)) {
    const state = await stateOf(p);
    if (state === "gone") return "gone";
    if (state === "T") return "held";
    if (Date.now() > until) return "late";
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** Resolves once `p` has ended, polling every 1, 2, 4 ... up to `maxWaitMs`. */
export async function untilEnded(p: ProcStat, maxWaitMs: number): Promise<void> {
  for (let wait = 1; await stillRuns(p); wait = Math.min(wait * 2, maxWaitMs)) {
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** Whether `p` is still the held shell of `key` (heldArgv: the key is its $0), not the program it execs. */
export async function isHeldShell(p: ProcStat, key: string): Promise<boolean> {
  const argv = (await readFile(`/proc/${p.pid}/cmdline`, "utf8").catch(() => "")).split("\0");
  return p.state === "T" && argv[1] === "sh" && argv[2] === "-c" && argv[4] === key;
}

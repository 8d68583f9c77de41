import { readFile, readdir } from "node:fs/promises";

/** pid and all its descendants, from the host's /proc. */
export async function processTree(root: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const visit = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) visit(c);
  };
  visit(root);
  return out;
}

/**
 * Signals an exec's process and everything it started: its process group (the engine starts each exec
 * as a session leader, so children forked meanwhile are in it) and its descendants by /proc (for those
 * that left the group and whose parents still live). The group goes first: a walk of /proc takes a while.
 */
export async function killProcessGroup(pid: number, signal: NodeJS.Signals): Promise<void> {
  const kill = (target: number) => {
    try {
      process.kill(target, signal);
    } catch {
      // already gone
    }
  };
  kill(-pid);
  for (const target of await processTree(pid)) kill(target);
}

import { readFile } from "node:fs/promises";

/** The cgroup's count of OOM kills (cgroup v1 memory.oom_control or v2 memory.events), if readable. */
export async function oomKillCount(id: string): Promise<number | undefined> {
  const candidates = [
    `/sys/fs/cgroup/memory/docker/${id}/memory.oom_control`,
    `/sys/fs/cgroup/docker/${id}/memory.events`,
    `/sys/fs/cgroup/system.slice/docker-${id}.scope/memory.events`,
  ];
  for (const file of candidates) {
    try {
      const text = await readFile(file, "utf8");
      const m = /^oom_kill (\d+)$/m.exec(text);
      if (m) return Number(m[1]);
    } catch {
      // try the next layout
    }
  }
  return undefined;
}

import { readFile } from "node:fs/promises";
import type { ContainerUsage } from "./container-runtime.js";

/** Where a process's cgroups are, from its /proc/<pid>/cgroup: the v1 memory and cpuacct paths, the v2 path. */
export interface CgroupPaths {
  memory?: string;
  cpuacct?: string;
  unified?: string;
}

/** Parses /proc/<pid>/cgroup (`hierarchy:controllers:path` lines). */
export function cgroupPaths(text: string): CgroupPaths {
  const out: CgroupPaths = {};
  for (const line of text.split("\n")) {
    const m = /^(\d+):([^:]*):(.+)$/.exec(line.trim());
    if (!m) continue;
    const controllers = m[2].split(",");
    if (m[1] === "0" && m[2] === "") out.unified = m[3];
    if (controllers.includes("memory")) out.memory = m[3];
    if (controllers.includes("cpuacct")) out.cpuacct = m[3];
  }
  return out;
}

/** The Docker engine's stats fields this reads (cgroup v1 gives max_usage; v2 has none). */
export interface EngineStats {
  memory_stats?: { max_usage?: number; usage?: number };
  cpu_stats?: { cpu_usage?: { total_usage?: number } };
}

/** Usage from the engine's stats: peak memory (v1's max_usage, else the current usage) and CPU time. */
export function usageFromStats(stats: EngineStats): ContainerUsage | undefined {
  const memory = stats.memory_stats?.max_usage ?? stats.memory_stats?.usage;
  const cpu = stats.cpu_stats?.cpu_usage?.total_usage;
  if (memory === undefined && cpu === undefined) return undefined;
  return { peakMemoryBytes: BigInt(memory ?? 0), cpuTimeNs: BigInt(cpu ?? 0) };
}

const ROOT = "/sys/fs/cgroup";

/**
 * Peak memory and CPU time of a container's cgroup: cgroup v1 (memory.max_usage_in_bytes, cpuacct.usage)
 * or v2 (memory.peak, cpu.stat usage_usec). The cgroup is the one of `pid` (the container's init), else
 * the engine's default cgroupfs and systemd places for `id`; undefined when none can be read.
 */
export async function cgroupUsage(id: string, pid: number): Promise<ContainerUsage | undefined> {
  const own = pid > 0 ? cgroupPaths(await readFile(`/proc/${pid}/cgroup`, "utf8").catch(() => "")) : {};
  const v1 = [
    ...(own.memory && own.cpuacct ? [[own.memory, own.cpuacct]] : []),
    [`/docker/${id}`, `/docker/${id}`],
    [`/system.slice/docker-${id}.scope`, `/system.slice/docker-${id}.scope`],
  ];
  for (const [memory, cpu] of v1) {
    const peak = await readNumber(`${ROOT}/memory${memory}/memory.max_usage_in_bytes`);
    const usage = await readNumber(`${ROOT}/cpuacct${cpu}/cpuacct.usage`);
    if (peak !== undefined && usage !== undefined) return { peakMemoryBytes: peak, cpuTimeNs: usage };
  }
  const v2 = [...(own.unified ? [own.unified] : []), `/docker/${id}`, `/system.slice/docker-${id}.scope`];
  for (const path of v2) {
    const peak = await readNumber(`${ROOT}${path}/memory.peak`);
    const stat = await readFile(`${ROOT}${path}/cpu.stat`, "utf8").catch(() => undefined);
    const usec = stat && /^usage_usec (\d+)$/m.exec(stat);
    if (peak !== undefined && usec) return { peakMemoryBytes: peak, cpuTimeNs: BigInt(usec[1]) * 1000n };
  }
  return undefined;
}

async function readNumber(file: string): Promise<bigint | undefined> {
  const text = await readFile(file, "utf8").catch(() => undefined);
  return text !== undefined && /^\d+\s*$/.test(text) ? BigInt(text.trim()) : undefined;
}

import type { ScarceResource } from "@diego/models";
import type { Resources, TaskRequest } from "./types.js";

/** What a task takes from a cell: its memory_mb and disk_mb (0 = no limit, takes nothing) and one container. */
export function demand(task: Pick<TaskRequest, "memoryMb" | "diskMb">): Resources {
  return { memoryMb: Math.max(0, task.memoryMb | 0), diskMb: Math.max(0, task.diskMb | 0), containers: 1 };
}

/** The resources of `capacity` that are too small for the task, in the order of the failure text. */
export function shortages(
  task: Pick<TaskRequest, "memoryMb" | "diskMb">,
  capacity: Resources | undefined,
): ScarceResource[] {
  const need = demand(task);
  const have = capacity ?? { memoryMb: 0, diskMb: 0, containers: 0 };
  const out: ScarceResource[] = [];
  if (have.containers < need.containers) out.push("containers");
  if (have.diskMb < need.diskMb) out.push("disk");
  if (have.memoryMb < need.memoryMb) out.push("memory");
  return out;
}

/** True when the task's memory, disk and one container fit in `capacity`. */
export function fits(task: Pick<TaskRequest, "memoryMb" | "diskMb">, capacity: Resources | undefined): boolean {
  return shortages(task, capacity).length === 0;
}

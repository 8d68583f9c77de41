import type { TaskRequest } from "./types.js";

/**
 * Largest tasks first ("boulders before pebbles"): memory descending, then disk descending, then task
 * guid, so that the order, and with it the placement, never depends on the order requests arrived in.
 */
export function compareLargestFirst(a: TaskRequest, b: TaskRequest): number {
  const byMemory = Math.max(0, b.memoryMb) - Math.max(0, a.memoryMb);
  if (byMemory !== 0) return byMemory;
  const byDisk = Math.max(0, b.diskMb) - Math.max(0, a.diskMb);
  if (byDisk !== 0) return byDisk;
  return a.taskGuid < b.taskGuid ? -1 : a.taskGuid > b.taskGuid ? 1 : 0;
}

/** One entry per task guid (the first one), largest first. */
export function orderBatch<T extends TaskRequest>(tasks: readonly T[]): T[] {
  const seen = new Set<string>();
  const unique: T[] = [];
  for (const task of tasks) {
    if (seen.has(task.taskGuid)) continue;
    seen.add(task.taskGuid);
    unique.push(task);
  }
  return unique.sort(compareLargestFirst);
}

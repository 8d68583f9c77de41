import type { CellSnapshot, TaskRequest } from "./types.js";
import { demand } from "@diego/models";

/** Added to a cell's score for each task it holds already, so tasks spread by count first (Diego's LocalityOffset). */
export const LOCALITY_PENALTY = 1000;
export const DEFAULT_STARTING_CONTAINER_WEIGHT = 0.25;

/** 1/total, or 0 for a resource the cell reports no total of (it then does not count in the score). */
export function inverse(total: number): number {
  return total > 0 ? 1 / total : 0;
}

/**
 * The part of a cell's score that does not depend on the task: the locality penalty, the starting
 * containers and the share of memory, disk and containers already used (equal thirds).
 */
export function loadScore(
  tasks: number,
  starting: number,
  usedMemory: number,
  usedDisk: number,
  usedContainers: number,
  invMemory: number,
  invDisk: number,
  invContainers: number,
  startingContainerWeight: number,
): number {
  return (
    LOCALITY_PENALTY * tasks +
    startingContainerWeight * starting +
    (usedMemory * invMemory + usedDisk * invDisk + usedContainers * invContainers) / 3
  );
}

/** The part of the score the task itself adds: its share of the cell's memory, disk and containers. */
export function taskShare(
  memoryMb: number,
  diskMb: number,
  invMemory: number,
  invDisk: number,
  invContainers: number,
): number {
  return (memoryMb * invMemory + diskMb * invDisk + invContainers) / 3;
}

/**
 * Diego's score of placing `task` on `cell` (lower is better; docs/contract.md, placement):
 *
 *   ((1 − rem.mem/tot.mem) + (1 − rem.disk/tot.disk) + (1 − rem.containers/tot.containers)) / 3
 *   + startingContainerWeight × startingContainers + 1000 × tasksOnCell
 *
 * with rem = available − task. It is computed as loadScore + taskShare, which is the same sum split in
 * two, so that the scheduler can bound it without the task. A resource with a total of 0 counts 0.
 */
export function score(
  cell: CellSnapshot,
  task: Pick<TaskRequest, "memoryMb" | "diskMb">,
  startingContainerWeight = DEFAULT_STARTING_CONTAINER_WEIGHT,
): number {
  const total = cell.total ?? NONE;
  const need = demand(task);
  return (
    cellLoad(cell, startingContainerWeight) +
    taskShare(need.memoryMb, need.diskMb, inverse(total.memoryMb), inverse(total.diskMb), inverse(total.containers))
  );
}

/** The task-independent part of a cell's score (loadScore of its state). */
export function cellLoad(cell: CellSnapshot, startingContainerWeight = DEFAULT_STARTING_CONTAINER_WEIGHT): number {
  const total = cell.total ?? NONE;
  const avail = cell.available ?? NONE;
  return loadScore(
    cell.tasks.length,
    cell.startingContainerCount,
    total.memoryMb - avail.memoryMb,
    total.diskMb - avail.diskMb,
    total.containers - avail.containers,
    inverse(total.memoryMb),
    inverse(total.diskMb),
    inverse(total.containers),
    startingContainerWeight,
  );
}

const NONE = { memoryMb: 0, diskMb: 0, containers: 0 } as const;

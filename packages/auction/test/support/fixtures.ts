import type { CellSnapshot, TaskRequest } from "../../src/index.js";

/** A busybox task of 64 MiB of memory and 64 MiB of disk, without placement tags; `over` on top. */
export const taskRequest = (taskGuid: string, over: Partial<TaskRequest> = {}): TaskRequest => ({
  taskGuid,
  rootFs: "docker:///diego/busybox",
  placementTags: [],
  memoryMb: 64,
  diskMb: 64,
  ...over,
});

/** An idle cell of 1 GiB of memory, 1 GiB of disk and 10 containers that takes any docker image; `over` on top. */
export const cellSnapshot = (cellId: string, over: Partial<CellSnapshot> = {}): CellSnapshot => ({
  cellId,
  stacks: [],
  rootfsProviders: [{ scheme: "docker", names: [] }],
  placementTags: [],
  optionalPlacementTags: [],
  total: { memoryMb: 1024, diskMb: 1024, containers: 10 },
  available: { memoryMb: 1024, diskMb: 1024, containers: 10 },
  tasks: [],
  startingContainerCount: 0,
  ...over,
});

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { CellPresenceSchema, cellv1, Task } from "@diego/proto";

/** What placement needs to know of a task: the TaskWork the BBS sends to the auctioneer and the auctioneer to a cell. */
export function taskWork(
  task: Pick<
    Task,
    "taskGuid" | "domain" | "rootFs" | "stack" | "placementTags" | "memoryMb" | "diskMb" | "maxPids" | "privileged"
  >,
) {
  return {
    taskGuid: task.taskGuid,
    domain: task.domain,
    rootFs: task.rootFs,
    stack: task.stack,
    placementTags: task.placementTags,
    memoryMb: task.memoryMb,
    diskMb: task.diskMb,
    maxPids: task.maxPids,
    privileged: task.privileged,
  } satisfies MessageInitShape<typeof cellv1.TaskWorkSchema>;
}

/** The presence a cell heartbeats to the BBS, from its state and the address it is reached at. */
export function presenceOf(state: MessageInitShape<typeof cellv1.CellStateSchema>, address: string) {
  return {
    cellId: state.cellId,
    address,
    zone: state.zone,
    stacks: state.stacks,
    rootfsProviders: state.rootfsProviders,
    placementTags: state.placementTags,
    optionalPlacementTags: state.optionalPlacementTags,
    allowPrivileged: state.allowPrivileged,
    total: state.total,
    available: state.available,
  } satisfies MessageInitShape<typeof CellPresenceSchema>;
}

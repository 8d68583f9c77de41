/**
 * The shapes placement works on. They are structural, so the generated protobuf messages
 * (diego.cell.v1.TaskWork, diego.cell.v1.CellState, diego.bbs.v1.CellPresence) can be passed as they are.
 */

import type { AdmitCell, AdmitTask, Resources } from "@diego/models";

export type { Resources, RootFsProvider } from "@diego/models";

/** What placement needs to know of a task. */
export interface TaskRequest extends AdmitTask {
  taskGuid: string;
}

/** What a cell offers, as far as compatibility and total capacity go (a presence has this much). */
export interface CellCapability extends AdmitCell {
  cellId: string;
  total?: Resources | undefined;
}

/** A cell's state for one auction: its capability plus what is free and what runs there now. */
export interface CellSnapshot extends CellCapability {
  available?: Resources | undefined;
  /** The tasks the cell holds now; only their number matters (Diego's locality penalty). */
  tasks: readonly unknown[];
  /** Containers reserved but not yet running. */
  startingContainerCount: number;
}

export interface ScheduleOptions {
  /** Weight of each starting container in the score (Diego's starting_container_weight). Default 0.25. */
  startingContainerWeight?: number;
  /**
   * Live cells that gave no usable state this round (did not answer, draining). They take no work,
   * but a failure is only permanent when none of them could ever run the task either.
   */
  unreachableCells?: readonly CellCapability[];
  /** Per task guid, cells the task must not be placed on this round (they refused it). */
  excludedCells?: ReadonlyMap<string, ReadonlySet<string>>;
}

export interface CellPlacement<T extends TaskRequest = TaskRequest> {
  cellId: string;
  tasks: T[];
}

/**
 * Why a task was not placed:
 * - `incompatible`: no cell offers its stack / root_fs / placement tags;
 * - `insufficient`: compatible cells exist but none has room (now, or ever when permanent);
 * - `unreachable`: no cell state could be obtained at all.
 */
export type FailureCause = "incompatible" | "insufficient" | "unreachable";

export interface PlacementFailure<T extends TaskRequest = TaskRequest> {
  task: T;
  /** The fixed text of docs/contract.md (failure reasons). */
  reason: string;
  cause: FailureCause;
  /**
   * True when no live compatible cell could ever run the task (incompatible everywhere, or larger than
   * every compatible cell's total capacity): reject it now. False: it waits for free capacity.
   */
  permanent: boolean;
}

export interface ScheduleResult<T extends TaskRequest = TaskRequest> {
  /** One entry per cell that got work, in cell id order; tasks in placement order (largest first). */
  placements: CellPlacement<T>[];
  /** In placement order (largest first). */
  failures: PlacementFailure<T>[];
}

/**
 * The shapes placement works on. They are structural, so the generated protobuf messages
 * (diego.cell.v1.TaskWork, diego.cell.v1.CellState, diego.bbs.v1.CellPresence) can be passed as they are.
 */

export interface Resources {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

export interface RootFsProvider {
  /** `docker` (any image) or `preloaded` (exactly the listed names). */
  scheme: string;
  names: readonly string[];
}

/** What placement needs to know of a task. */
export interface TaskRequest {
  taskGuid: string;
  rootFs: string;
  /** When set, only cells that offer this stack may run the task. */
  stack?: string;
  placementTags: readonly string[];
  /** 0 means no limit and needs no capacity. */
  memoryMb: number;
  /** 0 means no limit and needs no capacity. */
  diskMb: number;
}

/** What a cell offers, as far as compatibility and total capacity go (a presence has this much). */
export interface CellCapability {
  cellId: string;
  stacks: readonly string[];
  rootfsProviders: readonly RootFsProvider[];
  /** Tags a task must name to run here. */
  placementTags: readonly string[];
  /** Tags a task may name and still run here. */
  optionalPlacementTags: readonly string[];
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
  /** The fixed text of api.md section 4. */
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

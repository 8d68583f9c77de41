import type { CellPresence, cellv1 } from "@diego/proto";
import type { TaskWork } from "./batcher.js";

/** What the auction runner needs of the BBS. */
export interface BbsPort {
  listCells(): Promise<CellPresence[]>;
  /**
   * RejectTask with cell_id empty; `permanent` when no live cell can ever run the task (the BBS fails it at
   * once); `failed` when the task is now COMPLETED (permanent, or this rejection used up its retries).
   */
  rejectTask(taskGuid: string, reason: string, permanent: boolean): Promise<{ failed: boolean }>;
}

/** What the auction runner needs of the cells. */
export interface CellsPort {
  state(cell: CellPresence): Promise<cellv1.CellState>;
  /** Returns the tasks the cell refused, with its reasons. */
  perform(cell: CellPresence, tasks: TaskWork[]): Promise<cellv1.FailedWork[]>;
  /** Drops connections to cells that are not in the list any more. */
  retain(cells: readonly CellPresence[]): void;
  close(): void;
}

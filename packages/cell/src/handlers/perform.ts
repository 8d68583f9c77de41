import { failedPrecondition } from "@diego/models";
import type { cellv1 } from "@diego/proto";
import type { Cell } from "../cell.js";

/** CellRepService.Perform: reserve and start each task, return the ones that do not fit with the reason. */
export function perform(cell: Cell) {
  return (req: cellv1.PerformRequest) => {
    if (req.cellId && req.cellId !== cell.id) throw failedPrecondition(`this is cell ${cell.id}, not ${req.cellId}`);
    return { failed: cell.perform(req.tasks) };
  };
}

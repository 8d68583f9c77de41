import { invalidArgument } from "@diego/models";
import type { cellv1 } from "@diego/proto";
import type { Cell } from "../cell.js";
import type { Reconciler } from "../reconcile/reconciler.js";

/**
 * CellRepService.CancelTask: the BBS has already completed the task as cancelled; stop its processes
 * at once and remove the container. A task this cell does not run is left to the reconcile pass.
 */
export function cancelTask(cell: Cell, reconciler: () => Reconciler | undefined) {
  return (req: cellv1.CancelTaskRequest) => {
    if (!req.taskGuid) throw invalidArgument([{ field: "task_guid", message: "is required" }]);
    if (!cell.stopTask(req.taskGuid, "cancelled")) void reconciler()?.sync();
    return {};
  };
}

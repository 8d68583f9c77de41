import { grpcCode } from "@diego/kit";
import { DiegoError, invalidArgument, type FieldViolation } from "@diego/models";

/** Most items in one TaskBatch or LifecycleBatch call (docs/contract.md, batches). */
export const MAX_BATCH_ITEMS = 1_000;

/** Refuses a batch with more than MAX_BATCH_ITEMS items, naming the field and the limit. Pure. */
export function checkBatchSize(count: number, field = "items"): void {
  if (count > MAX_BATCH_ITEMS)
    throw invalidArgument([{ field, message: `at most ${MAX_BATCH_ITEMS} items per batch, got ${count}` }]);
}

/**
 * The cell an item of a LifecycleBatch acts as: the batch's cell_id, when the item names no cell or
 * the same one; an item naming another cell is refused (the batch is authorized for its cell_id only).
 * Pure.
 */
export function itemCellId(batchCellId: string, itemCellId: string, index: number): string {
  if (itemCellId === "" || itemCellId === batchCellId) return batchCellId;
  throw invalidArgument([
    {
      field: `items[${index}].cell_id`,
      message: `must be empty or the batch's cell_id ${JSON.stringify(batchCellId)}, got ${JSON.stringify(itemCellId)}`,
    },
  ]);
}

/** The BatchItemError of a refused item: what its own RPC would have failed with. Pure. */
export function batchItemError(err: unknown): BatchItemErrorInit {
  if (err instanceof DiegoError)
    return { code: grpcCode(err.code), message: err.message, violations: err.violations.map(copyViolation) };
  return { code: grpcCode("INTERNAL"), message: err instanceof Error ? err.message : String(err), violations: [] };
}

/** The fields of a BatchItemError message. */
export interface BatchItemErrorInit {
  code: number;
  message: string;
  violations: FieldViolation[];
}

function copyViolation(v: FieldViolation): FieldViolation {
  return { field: v.field, message: v.message };
}

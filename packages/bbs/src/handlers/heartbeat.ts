import { invalidArgument, type FieldViolation } from "@diego/models";
import type { CellRegistryServiceImpl, HandlerDeps } from "./deps.js";

const CELL_ID = /^[A-Za-z0-9_.-]+$/;

/** Creates or refreshes the cell's presence; it expires ttl_ms after the last heartbeat. */
export const heartbeat =
  ({ presence }: HandlerDeps): CellRegistryServiceImpl["heartbeat"] =>
  async (req) => {
    const violations: FieldViolation[] = [];
    const cell = req.cell;
    if (!cell) violations.push({ field: "cell", message: "is required" });
    else {
      if (!cell.cellId) violations.push({ field: "cell.cell_id", message: "is required" });
      else if (!CELL_ID.test(cell.cellId))
        violations.push({ field: "cell.cell_id", message: "may contain only a-z A-Z 0-9 . _ -" });
      if (!cell.address)
        violations.push({ field: "cell.address", message: "is required (host:port of the cell's gRPC server)" });
    }
    if (req.ttlMs <= 0n) violations.push({ field: "ttl_ms", message: "must be > 0" });
    if (violations.length || !cell) throw invalidArgument(violations);
    await presence.heartbeat(cell, Number(req.ttlMs));
    return {};
  };

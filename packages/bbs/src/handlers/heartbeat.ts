import { invalidArgument, LIMITS, nameViolations, type FieldViolation } from "@diego/models";
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
    const bad = (field: string, message: string) => violations.push({ field, message });
    if (cell) {
      nameViolations(cell.cellId, "cell.cell_id", bad);
      nameViolations(cell.address, "cell.address", bad);
      nameViolations(cell.zone, "cell.zone", bad);
      const lists = {
        stacks: cell.stacks,
        placement_tags: cell.placementTags,
        optional_placement_tags: cell.optionalPlacementTags,
      };
      for (const [name, list] of Object.entries(lists)) {
        if (list.length > LIMITS.presenceListItems)
          bad(`cell.${name}`, `must hold at most ${LIMITS.presenceListItems}`);
        else list.forEach((v, i) => nameViolations(v, `cell.${name}[${i}]`, bad));
      }
      if (cell.rootfsProviders.length > LIMITS.presenceListItems)
        bad("cell.rootfs_providers", `must hold at most ${LIMITS.presenceListItems}`);
    }
    if (req.ttlMs <= 0n) bad("ttl_ms", "must be > 0");
    else if (req.ttlMs > BigInt(LIMITS.ttlMs)) bad("ttl_ms", `must be at most ${LIMITS.ttlMs}`);
    if (violations.length || !cell) throw invalidArgument(violations);
    await presence.heartbeat(cell, Number(req.ttlMs));
    return {};
  };

import type { ServiceImpl } from "@diego/kit";
import { DiegoError, invalidArgument, type FieldViolation } from "@diego/models";
import type { auctioneerv1 } from "@diego/proto";
import type { TaskWork } from "../batcher.js";

export interface RequestTaskAuctionsDeps {
  /** True while this auctioneer holds the lock. */
  isActive: () => boolean;
  /** The active auctioneer's address as last seen, for the refusal text. */
  activeAddress: () => string;
  enqueue: (tasks: readonly TaskWork[]) => void;
}

/**
 * AuctioneerService.RequestTaskAuctions: queues the tasks for the next auction and returns at once.
 * A standby refuses with UNAVAILABLE (naming the active auctioneer when known) rather than forwarding:
 * the BBS finds the active one through the lock record and convergence re-sends pending tasks anyway.
 * An invalid item refuses the whole request with INVALID_ARGUMENT naming each bad field; nothing is queued.
 */
export function requestTaskAuctions(
  deps: RequestTaskAuctionsDeps,
): ServiceImpl<(typeof auctioneerv1.AuctioneerService)["method"]>["requestTaskAuctions"] {
  return (req) => {
    if (!deps.isActive()) {
      const active = deps.activeAddress();
      throw new DiegoError(
        "UNAVAILABLE",
        `this auctioneer is a standby${active ? `; the active auctioneer is at ${active}` : ""}`,
      );
    }
    const violations: FieldViolation[] = [];
    req.tasks.forEach((t, i) => {
      const at = `tasks[${i}]`;
      if (!t.taskGuid) violations.push({ field: `${at}.task_guid`, message: "is required" });
      if (!t.rootFs) violations.push({ field: `${at}.root_fs`, message: "is required" });
      if (t.memoryMb < 0) violations.push({ field: `${at}.memory_mb`, message: "must be >= 0" });
      if (t.diskMb < 0) violations.push({ field: `${at}.disk_mb`, message: "must be >= 0" });
    });
    if (violations.length) throw invalidArgument(violations);
    deps.enqueue(req.tasks);
    return {};
  };
}

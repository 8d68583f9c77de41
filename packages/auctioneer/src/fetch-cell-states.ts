import type { Logger } from "@diego/kit";
import type { CellPresence, cellv1 } from "@diego/proto";
import type pLimit from "p-limit";
import type { CellsPort } from "./ports.js";

export interface CellStates {
  /** Cells that answered for themselves and take work: their state and presence. */
  answered: { presence: CellPresence; state: cellv1.CellState }[];
  /** Live cells that sit this round out: no answer, another cell id, or draining. */
  unreachable: CellPresence[];
  /** State calls that failed, timed out or answered for another cell. */
  failed: number;
}

/**
 * Fetches the state of every live cell in parallel (each call with the State deadline). Cells that fail
 * to answer, report another cell id or are draining are left out of this round (docs/architecture.md, place).
 */
export async function fetchCellStates(
  cells: readonly CellPresence[],
  port: CellsPort,
  limit: ReturnType<typeof pLimit>,
  logger: Logger,
  warned: Map<string, number> = new Map(),
): Promise<CellStates> {
  // One warning per cell per minute: a dead cell stays listed until its presence expires.
  const warn = (cellId: string, fields: object, msg: string) => {
    const now = Date.now();
    if (now - (warned.get(cellId) ?? 0) < 60_000) return;
    warned.set(cellId, now);
    logger.warn({ cellId, ...fields }, msg);
  };
  const out: CellStates = { answered: [], unreachable: [], failed: 0 };
  await Promise.all(
    cells.map((presence) =>
      limit(async () => {
        try {
          const state = await port.state(presence);
          if (state.cellId !== presence.cellId) {
            out.failed++;
            out.unreachable.push(presence);
            warn(
              presence.cellId,
              { address: presence.address, reported: state.cellId },
              "cell answered for another cell id; left out of auctions until it answers for itself",
            );
          } else if (state.draining) {
            out.unreachable.push(presence);
          } else {
            out.answered.push({ presence, state });
            warned.delete(presence.cellId);
          }
        } catch (err) {
          out.failed++;
          out.unreachable.push(presence);
          warn(
            presence.cellId,
            { address: presence.address, err: (err as Error).message },
            "cell state request failed; left out of auctions until it answers",
          );
        }
      }),
    ),
  );
  return out;
}

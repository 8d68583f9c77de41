import type { Logger } from "@diego/kit";
import type { CellPresence, cellv1 } from "@diego/proto";
import type pLimit from "p-limit";
import type { CellsPort } from "./ports.js";

export interface FetchedStates {
  /** The cells that answered (whatever they said: the cache judges draining or another id). */
  answered: { presence: CellPresence; state: cellv1.CellState }[];
  /** The cells whose State call failed or timed out. */
  failed: CellPresence[];
  /** Answers for another cell id (counted as failed State requests). */
  otherId: number;
}

/**
 * Fetches the state of the given cells in parallel (each call with the State deadline). A warning per cell
 * per minute for a cell that fails or answers for another cell id: a dead cell stays listed until its
 * presence expires.
 */
export async function fetchCellStates(
  cells: readonly CellPresence[],
  port: CellsPort,
  limit: ReturnType<typeof pLimit>,
  logger: Logger,
  warned: Map<string, number> = new Map(),
): Promise<FetchedStates> {
  const warn = (cellId: string, fields: object, msg: string) => {
    const now = Date.now();
    if (now - (warned.get(cellId) ?? 0) < 60_000) return;
    warned.set(cellId, now);
    logger.warn({ cellId, ...fields }, msg);
  };
  const out: FetchedStates = { answered: [], failed: [], otherId: 0 };
  await Promise.all(
    cells.map((presence) =>
      limit(async () => {
        try {
          const state = await port.state(presence);
          out.answered.push({ presence, state });
          if (state.cellId !== presence.cellId) {
            out.otherId++;
            warn(
              presence.cellId,
              { address: presence.address, reported: state.cellId },
              "cell answered for another cell id; left out of auctions until it answers for itself",
            );
          } else warned.delete(presence.cellId);
        } catch (err) {
          out.failed.push(presence);
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

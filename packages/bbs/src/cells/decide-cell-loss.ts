/** What the BBS knows of one cell's presence. */
export interface CellSighting {
  cellId: string;
  /** Its presence record exists now. */
  present: boolean;
  /**
   * The last moment this BBS knew the record to exist (for a present cell, now). A record expires one
   * TTL after the cell's last heartbeat, so this is when the cell was found silent. For a cell never
   * seen since this BBS started (only its tasks name it): the start.
   */
  lastPresentMs: number;
}

export interface CellLossInputs {
  cells: readonly CellSighting[];
  nowMs: number;
  /** The presence TTL (the longest of the cells'). */
  ttlMs: number;
  /** The longest a mass silence holds cells, counted from its first silence. */
  holdMaxMs: number;
  /**
   * When this BBS could hear cells again: its start, etcd answering again, leadership gained, and
   * heartbeats resuming after a mass silence. Each gives every cell one TTL to heartbeat.
   */
  recoveredAtMs: readonly number[];
}

export type CellHoldReason = "recovering" | "mass-silence" | "settling";

export interface CellLossDecision {
  /** Absent cells to declare lost now (their CLAIMED and RUNNING tasks fail). */
  lost: string[];
  /** Absent cells not declared lost yet. */
  held: string[];
  /** Why cells are held, and when the decision changes at the latest (decide again then). */
  hold?: { reason: CellHoldReason; untilMs: number };
}

/**
 * Which absent cells are lost, telling the BBS's own isolation from cells' deaths (as Kubernetes'
 * node lifecycle controller stops evicting when most nodes of a zone turn unready together):
 * - within one TTL of a recovery mark, no cell is lost: cells that heartbeat are being heard again;
 * - when more than half of the cells alive at the start of a TTL-wide window went silent within it,
 *   the silence says more about the BBS (partitioned, connections reset, restarting) than about the
 *   cells: those cells, and any that went silent after them, are held until heartbeats resume (the
 *   caller then adds a recovery mark) or for at most `holdMaxMs` after the first silence of the
 *   episode (silences chained less than a TTL apart);
 * - otherwise an absent cell is lost once its silence is half a TTL old (settled): cells heartbeat
 *   every third of a TTL, so cells that lost the BBS together are all found silent within that of
 *   the first, and judging the first at once would take a mass silence for a single death. A single
 *   cell that went silent is thus lost 1.5 TTL after its last heartbeat.
 */
export function decideCellLoss(inputs: CellLossInputs): CellLossDecision {
  const { cells, nowMs, ttlMs, holdMaxMs } = inputs;
  const absent = cells.filter((c) => !c.present).sort((a, b) => a.lastPresentMs - b.lastPresentMs);
  if (absent.length === 0) return { lost: [], held: [] };
  const ids = (list: readonly CellSighting[]) => list.map((c) => c.cellId);

  const mark = Math.max(-Infinity, ...inputs.recoveredAtMs.filter((m) => m <= nowMs));
  if (nowMs < mark + ttlMs)
    return { lost: [], held: ids(absent), hold: { reason: "recovering", untilMs: mark + ttlMs } };

  const present = cells.length - absent.length;
  // An episode of silences chained less than a TTL apart; its bound counts from its first silence.
  let episodeStart = -Infinity;
  for (let i = 0; i < absent.length; i++) {
    const first = absent[i].lastPresentMs;
    if (i === 0 || first - absent[i - 1].lastPresentMs > ttlMs) episodeStart = first;
    if (nowMs >= episodeStart + holdMaxMs) continue;
    let silentInWindow = 0;
    while (i + silentInWindow < absent.length && absent[i + silentInWindow].lastPresentMs <= first + ttlMs)
      silentInWindow++;
    const aliveAtStart = present + (absent.length - i);
    if (silentInWindow * 2 > aliveAtStart) {
      return {
        lost: ids(absent.slice(0, i)),
        held: ids(absent.slice(i)),
        hold: { reason: "mass-silence", untilMs: episodeStart + holdMaxMs },
      };
    }
  }
  const settle = ttlMs / 2;
  const settling = absent.filter((c) => nowMs - c.lastPresentMs < settle);
  if (settling.length === 0) return { lost: ids(absent), held: [] };
  return {
    lost: ids(absent.filter((c) => nowMs - c.lastPresentMs >= settle)),
    held: ids(settling),
    hold: { reason: "settling", untilMs: settling[0].lastPresentMs + settle },
  };
}

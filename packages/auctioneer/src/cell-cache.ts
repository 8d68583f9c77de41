import { demand } from "@diego/models";
import type { CellPresence, cellv1 } from "@diego/proto";
import type { TaskWork } from "./batcher.js";

/** How a cell's last State call went. */
export type CellStatus = "ok" | "unreachable" | "draining" | "other-id";

interface Entry {
  presence: CellPresence;
  /** The last State answer, adjusted by the work placed since (absent until one came). */
  state?: cellv1.CellState;
  status: CellStatus;
  /** When the state was last fetched (ms), or -Infinity. */
  fetchedAtMs: number;
  /** Fetch it before the next schedule: new, moved, refused work, or the periodic check. */
  stale: boolean;
  /** State calls that failed in a row, for the backoff of an unreachable cell. */
  failures: number;
  /** An unreachable cell is not fetched again before this (ms). */
  retryAtMs: number;
}

/**
 * The auctioneer's picture of every live cell (docs/architecture.md, auctioneer: the cell cache), so that an
 * auction asks only the cells it has reason to doubt rather than every cell every time. Pure bookkeeping: the
 * runner does the calls and tells it what came back.
 *
 * - `setPresences` (ListCells): cells gone are dropped; new cells, and cells at a new address (restarted),
 *   become stale.
 * - `stored` (a State answer) replaces the cell's state; `failed` marks it unreachable, fetched again after
 *   a capped backoff (`retryAtMs`, given by the caller).
 * - `reserve` (a Perform the cell accepted) takes the work off the cached capacity and adds the tasks, as
 *   the cell itself does on accepting; a refused Perform makes the caller `markStale` the cell.
 * - Capacity a cell frees (tasks ending) is seen at the next fetch of that cell: the periodic check, or
 *   `markStaleOlderThan` when tasks wait for capacity.
 */
export class CellCache {
  private readonly entries = new Map<string, Entry>();
  /** The last full fetch (ms); -Infinity until one, and again after `invalidate`. */
  fullFetchAtMs = -Infinity;
  /** The last ListCells (ms). */
  listedAtMs = -Infinity;

  get size(): number {
    return this.entries.size;
  }

  /** Forgets everything: the next round fetches every cell (a gap: start, lost lock, BBS unreachable). */
  invalidate(): void {
    this.entries.clear();
    this.fullFetchAtMs = -Infinity;
    this.listedAtMs = -Infinity;
  }

  /** The live cells from ListCells. */
  setPresences(presences: readonly CellPresence[], nowMs: number): void {
    this.listedAtMs = nowMs;
    const live = new Set<string>();
    for (const presence of presences) {
      live.add(presence.cellId);
      const known = this.entries.get(presence.cellId);
      if (known && known.presence.address === presence.address) {
        known.presence = presence;
        continue;
      }
      this.entries.set(presence.cellId, {
        presence,
        status: "unreachable",
        fetchedAtMs: -Infinity,
        stale: true,
        failures: 0,
        retryAtMs: -Infinity,
      });
    }
    for (const id of [...this.entries.keys()]) if (!live.has(id)) this.entries.delete(id);
  }

  markStale(cellId: string): void {
    const e = this.entries.get(cellId);
    if (e) {
      e.stale = true;
      e.retryAtMs = -Infinity;
    }
  }

  markAllStale(): void {
    for (const e of this.entries.values()) e.stale = true;
  }

  /** Marks stale the reachable cells last fetched before `ms`; returns how many. */
  markStaleOlderThan(ms: number): number {
    let n = 0;
    for (const e of this.entries.values())
      if (e.status !== "unreachable" && !e.stale && e.fetchedAtMs < ms) {
        e.stale = true;
        n++;
      }
    return n;
  }

  /** The cells to fetch now: stale ones, and unreachable ones whose backoff has passed. */
  toFetch(nowMs: number): CellPresence[] {
    const out: CellPresence[] = [];
    for (const e of this.entries.values())
      if ((e.stale || e.status === "unreachable") && e.retryAtMs <= nowMs) out.push(e.presence);
    return out;
  }

  /** A State answer for a cell (status from how it answered: ok, draining, or for another cell id). */
  stored(cellId: string, state: cellv1.CellState, nowMs: number): void {
    const e = this.entries.get(cellId);
    if (!e) return;
    e.state = state;
    e.status = state.cellId !== cellId ? "other-id" : state.draining ? "draining" : "ok";
    e.fetchedAtMs = nowMs;
    e.stale = false;
    e.failures = 0;
    e.retryAtMs = -Infinity;
  }

  /** A State call failed: the cell is unreachable until `retryAtMs`; returns its failures in a row. */
  failed(cellId: string, retryAtFor: (failures: number) => number): number {
    const e = this.entries.get(cellId);
    if (!e) return 0;
    e.status = "unreachable";
    e.state = undefined;
    e.stale = true;
    e.failures++;
    e.retryAtMs = retryAtFor(e.failures);
    return e.failures;
  }

  /** Work the cell accepted at Perform: reserved on the cached state as the cell reserves it. */
  reserve(cellId: string, tasks: readonly TaskWork[]): void {
    const state = this.entries.get(cellId)?.state;
    if (!state) return;
    const available = state.available;
    for (const task of tasks) {
      if (available) {
        const need = demand(task);
        available.memoryMb -= need.memoryMb;
        available.diskMb -= need.diskMb;
        available.containers -= 1;
      }
      state.tasks.push(task);
      state.startingContainerCount++;
    }
  }

  presence(cellId: string): CellPresence | undefined {
    return this.entries.get(cellId)?.presence;
  }

  /** The cells that take work (their cached states), and the live ones that sit out (unreachable, draining, another id). */
  snapshot(): { answered: cellv1.CellState[]; unreachable: CellPresence[] } {
    const answered: cellv1.CellState[] = [];
    const unreachable: CellPresence[] = [];
    for (const e of this.entries.values())
      if (e.status === "ok" && e.state) answered.push(e.state);
      else unreachable.push(e.presence);
    return { answered, unreachable };
  }

  /** The status of every cell, for tests and logs. */
  statuses(): Map<string, CellStatus> {
    return new Map([...this.entries].map(([id, e]) => [id, e.status]));
  }
}

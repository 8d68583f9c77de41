import type { CellPresence } from "@diego/proto";

/**
 * Cell presence: each cell's record lives while its heartbeats come; it disappears `ttlMs` after the
 * last one (or at once on deregister).
 */
export interface PresenceStore {
  heartbeat(cell: CellPresence, ttlMs: number): Promise<void>;
  deregister(cellId: string): Promise<void>;
  /** The live cells. Throws when they cannot be known (etcd unreachable): never an empty list then. */
  list(): Promise<CellPresence[]>;
  get(cellId: string): Promise<CellPresence | undefined>;
  /**
   * Follows presence as it changes, starting with one `all` event (and another after each re-read,
   * e.g. when etcd compacted past the watch). Stores that cannot watch leave it out.
   */
  watch?(listener: (event: PresenceEvent) => void): () => void;
}

export type PresenceEvent =
  | { kind: "present"; cellId: string; ttlMs?: number }
  | { kind: "gone"; cellId: string }
  | { kind: "all"; cells: PresenceRecord[] };

/** A cell present, with the TTL its last heartbeat named when the store knows it. */
export interface PresenceRecord {
  cellId: string;
  ttlMs?: number;
}

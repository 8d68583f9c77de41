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
}

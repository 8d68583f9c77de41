import { clone } from "@bufbuild/protobuf";
import { CellPresenceSchema, type CellPresence } from "@diego/proto";
import type { PresenceEvent, PresenceStore } from "./presence-store.js";

/** The in-memory twin of EtcdPresenceStore; time comes from `nowMs` so tests can move it. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly cells = new Map<string, { cell: CellPresence; expiresAt: number; ttlMs: number }>();
  private readonly listeners = new Set<(event: PresenceEvent) => void>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  async heartbeat(cell: CellPresence, ttlMs: number): Promise<void> {
    const fresh = !this.cells.has(cell.cellId);
    this.cells.set(cell.cellId, { cell: clone(CellPresenceSchema, cell), expiresAt: this.nowMs() + ttlMs, ttlMs });
    if (fresh) this.emit({ kind: "present", cellId: cell.cellId, ttlMs });
  }

  async deregister(cellId: string): Promise<void> {
    if (this.cells.delete(cellId)) this.emit({ kind: "gone", cellId });
  }

  /** Follows heartbeats and deregistrations; an expiry is seen when the cells are next listed. */
  watch(listener: (event: PresenceEvent) => void): () => void {
    this.listeners.add(listener);
    const now = this.nowMs();
    const cells = [...this.cells]
      .filter(([, r]) => r.expiresAt > now)
      .map(([cellId, r]) => ({ cellId, ttlMs: r.ttlMs }));
    listener({ kind: "all", cells });
    return () => this.listeners.delete(listener);
  }

  private emit(event: PresenceEvent): void {
    for (const l of this.listeners) l(event);
  }

  async list(): Promise<CellPresence[]> {
    const now = this.nowMs();
    const out: CellPresence[] = [];
    for (const [id, rec] of this.cells) {
      if (rec.expiresAt <= now) {
        this.cells.delete(id);
        this.emit({ kind: "gone", cellId: id });
      } else out.push(rec.cell);
    }
    return out;
  }

  async get(cellId: string): Promise<CellPresence | undefined> {
    return (await this.list()).find((c) => c.cellId === cellId);
  }
}

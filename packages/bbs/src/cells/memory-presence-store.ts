import { clone } from "@bufbuild/protobuf";
import { CellPresenceSchema, type CellPresence } from "@diego/proto";
import type { PresenceStore } from "./presence-store.js";

/** The in-memory twin of EtcdPresenceStore; time comes from `nowMs` so tests can move it. */
export class MemoryPresenceStore implements PresenceStore {
  private readonly cells = new Map<string, { cell: CellPresence; expiresAt: number }>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  async heartbeat(cell: CellPresence, ttlMs: number): Promise<void> {
    this.cells.set(cell.cellId, { cell: clone(CellPresenceSchema, cell), expiresAt: this.nowMs() + ttlMs });
  }

  async deregister(cellId: string): Promise<void> {
    this.cells.delete(cellId);
  }

  async list(): Promise<CellPresence[]> {
    const now = this.nowMs();
    const out: CellPresence[] = [];
    for (const [id, rec] of this.cells) {
      if (rec.expiresAt <= now) this.cells.delete(id);
      else out.push(rec.cell);
    }
    return out;
  }

  async get(cellId: string): Promise<CellPresence | undefined> {
    return (await this.list()).find((c) => c.cellId === cellId);
  }
}

import { heldByOther, type LockRecord, type LockStore } from "./lock-store.js";

/** The in-memory twin of EtcdLockStore; time comes from `nowMs`. */
export class MemoryLockStore implements LockStore {
  private readonly locks = new Map<string, LockRecord & { expiresAt: number }>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  async lock(key: string, owner: string, value: string, ttlMs: number): Promise<void> {
    const held = this.live(key);
    if (held && held.owner !== owner) throw heldByOther(key, held.owner);
    this.locks.set(key, { owner, value, expiresAt: this.nowMs() + ttlMs });
  }

  async release(key: string, owner: string): Promise<void> {
    const held = this.live(key);
    if (!held) return;
    if (held.owner !== owner) throw heldByOther(key, held.owner);
    this.locks.delete(key);
  }

  async fetch(key: string): Promise<LockRecord | undefined> {
    const held = this.live(key);
    return held && { owner: held.owner, value: held.value };
  }

  private live(key: string) {
    const held = this.locks.get(key);
    if (held && held.expiresAt <= this.nowMs()) {
      this.locks.delete(key);
      return undefined;
    }
    return held;
  }
}

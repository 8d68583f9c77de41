import { DiegoError } from "@diego/models";

export interface LockRecord {
  owner: string;
  value: string;
}

/**
 * Named locks with a TTL (Diego's Locket): an owner holds a lock while it keeps calling `lock` within
 * the TTL. The auctioneer elects itself through the `auctioneer` lock, whose value is its address.
 */
export interface LockStore {
  /** Takes the lock for owner, or refreshes it (and its value) if owner holds it. FAILED_PRECONDITION when another owner does. */
  lock(key: string, owner: string, value: string, ttlMs: number): Promise<void>;
  /** Gives the lock up; FAILED_PRECONDITION when another owner holds it; nothing when nobody does. */
  release(key: string, owner: string): Promise<void>;
  fetch(key: string): Promise<LockRecord | undefined>;
}

export function heldByOther(key: string, holder: string): DiegoError {
  return new DiegoError("FAILED_PRECONDITION", `lock ${JSON.stringify(key)} is held by ${JSON.stringify(holder)}`);
}

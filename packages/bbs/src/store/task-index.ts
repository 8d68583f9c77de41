import type { TaskState } from "@diego/proto";
import type { TaskEntry } from "./task-entry.js";
import { SortedStrings } from "./sorted-strings.js";
import type { PageRequest, TaskFilter, TaskPage } from "./task-store.js";

/**
 * The in-memory view of every task, indexed by guid, domain, cell and state. Changes are applied by
 * revision: a value older than what is known (a late watch event after this instance's own newer
 * write) is ignored. A removal leaves a tombstone until the etcd watch has passed its revision, so
 * that a late event cannot bring a deleted task back.
 */
export class TaskIndex {
  private readonly byGuid = new Map<string, TaskEntry>();
  private readonly byDomain = new Map<string, Set<string>>();
  private readonly byCell = new Map<string, Set<string>>();
  private readonly byState = new Map<TaskState, Set<string>>();
  /** Every guid in order, for pages. */
  private readonly sorted = new SortedStrings();
  private readonly tombstones = new Map<string, number>();

  get size(): number {
    return this.byGuid.size;
  }

  get(guid: string): TaskEntry | undefined {
    return this.byGuid.get(guid);
  }

  /** The newest revision known for the guid: its entry's, else its tombstone's, else 0. */
  revisionOf(guid: string): number {
    return this.byGuid.get(guid)?.revision ?? this.tombstones.get(guid) ?? 0;
  }

  /** Stores the entry unless something as new or newer is known. Returns true when stored. */
  put(entry: TaskEntry): boolean {
    if (entry.revision <= this.revisionOf(entry.guid)) return false;
    const old = this.byGuid.get(entry.guid);
    this.tombstones.delete(entry.guid);
    this.byGuid.set(entry.guid, entry);
    if (!old) this.sorted.add(entry.guid);
    // Only the index sets whose key changed are touched (a transition mostly changes the state alone).
    if (old?.domain !== entry.domain) {
      if (old) drop(this.byDomain, old.domain, old.guid);
      add(this.byDomain, entry.domain, entry.guid);
    }
    if (old?.cellId !== entry.cellId) {
      if (old) drop(this.byCell, old.cellId, old.guid);
      add(this.byCell, entry.cellId, entry.guid);
    }
    if (old?.state !== entry.state) {
      if (old) drop(this.byState, old.state, old.guid);
      add(this.byState, entry.state, entry.guid);
    }
    return true;
  }

  /** Removes the task as of `revision` unless something newer is known. Returns the removed entry. */
  remove(guid: string, revision: number, keepTombstone: boolean): TaskEntry | undefined {
    if (revision <= this.revisionOf(guid)) return undefined;
    const old = this.byGuid.get(guid);
    if (old) {
      this.unindex(old);
      this.byGuid.delete(guid);
      this.sorted.delete(guid);
    }
    if (keepTombstone) this.tombstones.set(guid, revision);
    else this.tombstones.delete(guid);
    return old;
  }

  /** Forgets tombstones at or below the revision the watch has reached. */
  pruneTombstones(upTo: number): void {
    if (this.tombstones.size === 0) return;
    for (const [guid, rev] of this.tombstones) if (rev <= upTo) this.tombstones.delete(guid);
  }

  clear(): void {
    this.byGuid.clear();
    this.byDomain.clear();
    this.byCell.clear();
    this.byState.clear();
    this.sorted.clear();
    this.tombstones.clear();
  }

  values(): IterableIterator<TaskEntry> {
    return this.byGuid.values();
  }

  /** Entries matching every non-empty filter, walking the smallest index that applies. */
  select(filter: TaskFilter): TaskEntry[] {
    const candidates = this.smallestCandidates(filter);
    const out: TaskEntry[] = [];
    for (const guid of candidates ?? this.byGuid.keys()) {
      const e = this.byGuid.get(guid);
      if (e && matchesFilter(filter, e)) out.push(e);
    }
    return out;
  }

  /**
   * One page in guid order after `page.after`. A filter that narrows to a small index set (a domain,
   * a cell, a state holding under an eighth of the tasks) sorts just that set; otherwise the walk
   * goes along every guid in order from the position, stopping once the page is full.
   */
  page(filter: TaskFilter, page: PageRequest): TaskPage {
    const candidates = this.smallestCandidates(filter);
    let ordered: Iterable<string>;
    if (candidates && candidates.size * 8 < this.byGuid.size) {
      const after = page.after;
      ordered = [...candidates].filter((g) => g > after).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    } else {
      ordered = this.sorted.after(page.after);
    }
    const entries: TaskEntry[] = [];
    let bytes = 0;
    for (const guid of ordered) {
      const e = this.byGuid.get(guid);
      if (!e || !matchesFilter(filter, e)) continue;
      if (entries.length >= page.limit || (entries.length > 0 && bytes + e.bytes.length > page.maxBytes))
        return { entries, more: true };
      entries.push(e);
      bytes += e.bytes.length;
    }
    return { entries, more: false };
  }

  /** The smallest of the index sets the filter names, or undefined when it names none. */
  private smallestCandidates(filter: TaskFilter): Set<string> | undefined {
    const sets: Set<string>[] = [];
    if (filter.domain) sets.push(this.byDomain.get(filter.domain) ?? new Set());
    if (filter.cellId) sets.push(this.byCell.get(filter.cellId) ?? new Set());
    if (filter.state) sets.push(this.byState.get(filter.state) ?? new Set());
    if (sets.length === 0) return undefined;
    return sets.reduce((a, b) => (b.size < a.size ? b : a));
  }

  countByState(): Map<TaskState, number> {
    const out = new Map<TaskState, number>();
    for (const [state, set] of this.byState) out.set(state, set.size);
    return out;
  }

  private unindex(entry: TaskEntry): void {
    drop(this.byDomain, entry.domain, entry.guid);
    drop(this.byCell, entry.cellId, entry.guid);
    drop(this.byState, entry.state, entry.guid);
  }
}

function add<K>(index: Map<K, Set<string>>, key: K, guid: string): void {
  let set = index.get(key);
  if (!set) index.set(key, (set = new Set()));
  set.add(guid);
}

function drop<K>(index: Map<K, Set<string>>, key: K, guid: string): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(guid);
  if (set.size === 0) index.delete(key);
}

/** Whether the entry passes every non-empty filter (labels: every pair must match). Pure. */
export function matchesFilter(filter: TaskFilter, e: TaskEntry): boolean {
  if (filter.domain && e.domain !== filter.domain) return false;
  if (filter.cellId && e.cellId !== filter.cellId) return false;
  if (filter.state && e.state !== filter.state) return false;
  if (filter.labels) for (const k in filter.labels) if (e.labels[k] !== filter.labels[k]) return false;
  return true;
}

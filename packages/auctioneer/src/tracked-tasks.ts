import type { TaskWork } from "./batcher.js";

export interface Refusal {
  cellId: string;
  reason: string;
}

export interface TrackedTask {
  task: TaskWork;
  /** When the BBS last asked for this task's auction (ms). */
  requestedAt: number;
  /** Cells that refused it at Perform, oldest first. */
  refusals: Refusal[];
  /** Rounds it was auctioned without being placed. */
  attempts: number;
  /** When it goes to auction again (ms); 0 for a new task. */
  retryAtMs: number;
}

/**
 * The tasks this auctioneer holds between auctions: those waiting for free capacity and those a cell
 * refused. Diego rejects every task it cannot place at once, which burns one of the task's retries per
 * round; here a task that only waits for capacity stays until it is placed, or until the BBS stops
 * asking for it (it asks again for every pending task each convergence pass, so a task that was
 * cancelled or deleted falls out after `expiryMs`).
 */
export class TrackedTasks {
  private readonly tasks = new Map<string, TrackedTask>();

  constructor(private readonly expiryMs: number) {}

  get size(): number {
    return this.tasks.size;
  }

  get(taskGuid: string): TrackedTask | undefined {
    return this.tasks.get(taskGuid);
  }

  /** Fresh requests from the BBS: new tasks join, known ones get the new contents and time. */
  merge(fresh: readonly TaskWork[], nowMs: number): void {
    for (const task of fresh) {
      const known = this.tasks.get(task.taskGuid);
      if (known) {
        known.task = task;
        known.requestedAt = nowMs;
      } else this.tasks.set(task.taskGuid, { task, requestedAt: nowMs, refusals: [], attempts: 0, retryAtMs: 0 });
    }
  }

  /** Forgets tasks the BBS has not asked about for longer than the expiry; returns their guids. */
  expire(nowMs: number): string[] {
    const gone: string[] = [];
    for (const [guid, t] of this.tasks) {
      if (nowMs - t.requestedAt > this.expiryMs) {
        this.tasks.delete(guid);
        gone.push(guid);
      }
    }
    return gone;
  }

  all(): TrackedTask[] {
    return [...this.tasks.values()];
  }

  /** The tasks due for an auction at `nowMs`. */
  due(nowMs: number): TrackedTask[] {
    return this.all().filter((t) => t.retryAtMs <= nowMs);
  }

  /** When the next held task is due (Infinity when none is held). */
  nextDueMs(): number {
    let next = Infinity;
    for (const t of this.tasks.values()) next = Math.min(next, t.retryAtMs);
    return next;
  }

  /** Keeps a task for another round: its attempts, when it is due, and a refusal to record. */
  keep(taskGuid: string, kept: { attempts: number; retryAtMs: number; refusal?: Refusal }): void {
    const t = this.tasks.get(taskGuid);
    if (!t) return;
    t.attempts = kept.attempts;
    t.retryAtMs = kept.retryAtMs;
    if (kept.refusal) t.refusals.push(kept.refusal);
  }

  /** Records a cell's refusal; returns how many cells have refused the task so far. */
  refused(taskGuid: string, refusal: Refusal): number {
    const t = this.tasks.get(taskGuid);
    if (!t) return 0;
    t.refusals.push(refusal);
    return t.refusals.length;
  }

  /** Per task, the cells that refused it: placement skips them. */
  exclusions(): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const [guid, t] of this.tasks) if (t.refusals.length) out.set(guid, new Set(t.refusals.map((r) => r.cellId)));
    return out;
  }

  delete(taskGuid: string): void {
    this.tasks.delete(taskGuid);
  }

  clear(): void {
    this.tasks.clear();
  }
}

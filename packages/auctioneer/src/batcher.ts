import type { cellv1 } from "@diego/proto";

export type TaskWork = cellv1.TaskWork;

/**
 * Auction requests accumulate here while an auction runs and form the next batch (docs/architecture.md,
 * place), de-duplicated by task guid: a task requested again before the batch is taken keeps one entry,
 * with the latest request's contents and its place in line.
 */
export class Batcher {
  private pending = new Map<string, TaskWork>();
  private waiter?: () => void;

  /** Adds requests and wakes whoever waits for work; returns how many distinct tasks now wait. */
  add(tasks: readonly TaskWork[]): number {
    for (const task of tasks) {
      this.pending.delete(task.taskGuid);
      this.pending.set(task.taskGuid, task);
    }
    if (tasks.length > 0) this.wake();
    return this.pending.size;
  }

  get size(): number {
    return this.pending.size;
  }

  /** Takes everything queued so far; requests that arrive from now on form the next batch. */
  drain(): TaskWork[] {
    const batch = [...this.pending.values()];
    this.pending = new Map();
    return batch;
  }

  clear(): void {
    this.pending.clear();
  }

  /** Resolves when work is queued (at once if some is), when `timeoutMs` passes, or on wake(). */
  waitForWork(timeoutMs: number): Promise<void> {
    if (this.pending.size > 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.min(Math.max(0, timeoutMs), 2_147_483_647));
      const previous = this.waiter;
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.waiter = () => {
        previous?.();
        done();
      };
    });
  }

  /** Releases every waiter. */
  wake(): void {
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}

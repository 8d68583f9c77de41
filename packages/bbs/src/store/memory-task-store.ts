import { randomBytes } from "node:crypto";
import { IndexedTaskStore } from "./indexed-task-store.js";
import { LazyTaskChange } from "./task-change.js";
import { decodeTask, encodeTask, entryOf } from "./task-entry.js";
import type { ApplyResult, Mutation, TaskStore } from "./task-store.js";
import { checkStoredTaskSize } from "./task-size.js";

/**
 * The in-memory twin of the etcd store: same interface, same contract tests, no etcd. Each apply is
 * atomic because it runs to completion without yielding.
 */
export class MemoryTaskStore extends IndexedTaskStore implements TaskStore {
  private revision = 0;
  private readonly epoch = `mem-${randomBytes(6).toString("hex")}`;

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.unsubscribeAll();
  }

  async apply(guid: string, mutate: Mutation): Promise<ApplyResult> {
    await Promise.resolve();
    const entry = this.index.get(guid);
    const before = entry && decodeTask(entry.bytes);
    const outcome = mutate(before);
    if (outcome.kind === "put") {
      const bytes = encodeTask(outcome.task);
      checkStoredTaskSize(guid, bytes);
      this.index.put(entryOf(outcome.task, bytes, ++this.revision));
      this.emit(
        new LazyTaskChange(
          entry ? "changed" : "created",
          guid,
          this.revision,
          entry?.bytes,
          bytes,
          outcome.task.domain,
        ),
      );
    } else if (outcome.kind === "delete" && entry) {
      this.index.remove(guid, ++this.revision, false);
      this.emit(new LazyTaskChange("removed", guid, this.revision, entry.bytes, undefined, entry.domain));
    }
    return { before, outcome };
  }

  streamHead(): { epoch: string; revision: number } {
    return { epoch: this.epoch, revision: this.revision };
  }

  healthy(): boolean {
    return true;
  }
}

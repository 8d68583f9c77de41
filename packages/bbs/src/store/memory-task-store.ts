import type { Task, TaskState } from "@diego/proto";
import { LazyTaskChange } from "./task-change.js";
import { decodeTask, encodeTask, entryOf, type TaskEntry } from "./task-entry.js";
import { TaskIndex } from "./task-index.js";
import type { ApplyResult, Mutation, TaskFilter, TaskStore, TaskStoreEvent } from "./task-store.js";

/**
 * The in-memory twin of the etcd store: same interface, same contract tests, no etcd. Each apply is
 * atomic because it runs to completion without yielding.
 */
export class MemoryTaskStore implements TaskStore {
  private readonly index = new TaskIndex();
  private readonly listeners = new Set<(event: TaskStoreEvent) => void>();
  private revision = 0;

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.listeners.clear();
  }

  async get(guid: string): Promise<Task | undefined> {
    const entry = this.index.get(guid);
    return entry && decodeTask(entry.bytes);
  }

  async list(filter: TaskFilter): Promise<Task[]> {
    return this.index.select(filter).map((e) => decodeTask(e.bytes));
  }

  select(filter: TaskFilter): TaskEntry[] {
    return this.index.select(filter);
  }

  entries(): Iterable<TaskEntry> {
    return [...this.index.values()];
  }

  countByState(): Map<TaskState, number> {
    return this.index.countByState();
  }

  async apply(guid: string, mutate: Mutation): Promise<ApplyResult> {
    await Promise.resolve();
    const entry = this.index.get(guid);
    const before = entry && decodeTask(entry.bytes);
    const outcome = mutate(before);
    if (outcome.kind === "put") {
      const bytes = encodeTask(outcome.task);
      this.index.put(entryOf(outcome.task, bytes, ++this.revision));
      this.emit(new LazyTaskChange(entry ? "changed" : "created", guid, entry?.bytes, bytes, outcome.task.domain));
    } else if (outcome.kind === "delete" && entry) {
      this.index.remove(guid, ++this.revision, false);
      this.emit(new LazyTaskChange("removed", guid, entry.bytes, undefined, entry.domain));
    }
    return { before, outcome };
  }

  subscribe(listener: (event: TaskStoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  healthy(): boolean {
    return true;
  }

  private emit(event: TaskStoreEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}

import type { Task, TaskState } from "@diego/proto";
import { decodeTask, type TaskEntry } from "./task-entry.js";
import { TaskIndex } from "./task-index.js";
import type { PageRequest, TaskFilter, TaskPage, TaskStoreEvent } from "./task-store.js";

/**
 * What both task stores share: reads served from the in-memory index (the stored protobuf bytes plus
 * index fields), and the fan-out of change events to subscribers. The stores differ only in how
 * they write and where their changes come from.
 */
export abstract class IndexedTaskStore {
  protected readonly index = new TaskIndex();
  private readonly listeners = new Set<(event: TaskStoreEvent) => void>();

  constructor(private readonly onListenerError: (err: unknown) => void = () => undefined) {}

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

  page(filter: TaskFilter, page: PageRequest): TaskPage {
    return this.index.page(filter, page);
  }

  entries(): Iterable<TaskEntry> {
    return [...this.index.values()];
  }

  countByState(): Map<TaskState, number> {
    return this.index.countByState();
  }

  subscribe(listener: (event: TaskStoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected emit(event: TaskStoreEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        this.onListenerError(err);
      }
    }
  }

  protected unsubscribeAll(): void {
    this.listeners.clear();
  }
}

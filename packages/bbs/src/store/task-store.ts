import type { Outcome } from "@diego/models";
import type { Task, TaskState } from "@diego/proto";
import type { TaskEntry } from "./task-entry.js";

/** ListTasks filters; an empty value matches all. */
export interface TaskFilter {
  domain?: string;
  cellId?: string;
  state?: TaskState;
  /** Every pair must match the task's labels. */
  labels?: Readonly<Record<string, string>>;
}

/** One ListTasks page: at most `limit` entries and `maxBytes` of them (but at least one), by guid after `after`. */
export interface PageRequest {
  /** The last guid of the previous page; "" for the first. */
  after: string;
  limit: number;
  maxBytes: number;
}

export interface TaskPage {
  entries: TaskEntry[];
  /** More entries match after the last one. */
  more: boolean;
}

/**
 * A change of one task, as seen by the store (for the etcd store: as etcd's watch reports it, so
 * every BBS instance sees the writes of every other). Tasks are decoded only when asked for.
 */
export interface TaskChange {
  kind: "created" | "changed" | "removed";
  guid: string;
  domain: string;
  /** The store revision of the change (etcd's mod_revision; the memory store's own counter). */
  revision: number;
  /** The task before the change (changed, removed). */
  before(): Task | undefined;
  /** The task after the change (created, changed). */
  after(): Task | undefined;
  /**
   * The stored protobuf bytes of the task before or after the change when they carry no secret
   * (image_password, secret_env), so that they may leave the BBS as they are without decoding and
   * encoding again; undefined when that side is absent or must be redacted.
   */
  publicBytes?(side: "before" | "after"): Uint8Array | undefined;
  /**
   * The stored bytes of both sides plus their framing: at least the size of the encoded event (a
   * redacted task is smaller), known without encoding it. Undefined when the store does not know.
   */
  storedSize?(): number | undefined;
}

/** The store lost track of changes (e.g. the etcd watch fell behind a compaction) and re-read everything. */
export interface TaskReset {
  kind: "reset";
}

export type TaskStoreEvent = TaskChange | TaskReset;

/** Computes the next state of one task from its current one (undefined: absent). Pure; may run more than once. */
export type Mutation = (current: Task | undefined) => Outcome;

export interface ApplyResult {
  /** The task as the mutation found it (undefined when absent). */
  before: Task | undefined;
  outcome: Outcome;
}

/**
 * Where tasks live. Every change goes through `apply`: read the current task, run the pure mutation,
 * and write the result only if the task is still as it was read (compare-and-swap), re-reading and
 * retrying a bounded number of times when another writer got there first. A mutation that throws
 * (a refused transition) changes nothing and its error is returned, but only once the store has made
 * sure it judged the current task.
 */
export interface TaskStore {
  start(): Promise<void>;
  stop(): Promise<void>;
  get(guid: string): Promise<Task | undefined>;
  list(filter: TaskFilter): Promise<Task[]>;
  /** The entries (stored bytes plus index fields) matching the filter, without decoding them. */
  select(filter: TaskFilter): TaskEntry[];
  /** One page of the entries matching the filter, in guid order. */
  page(filter: TaskFilter, page: PageRequest): TaskPage;
  /** Index fields of every task, without decoding them (convergence, metrics). */
  entries(): Iterable<TaskEntry>;
  /** Number of tasks in each state. */
  countByState(): Map<TaskState, number>;
  apply(guid: string, mutate: Mutation): Promise<ApplyResult>;
  subscribe(listener: (event: TaskStoreEvent) => void): () => void;
  /**
   * Where the change stream stands: the name of its history ("etcd" for every BBS on one etcd; a
   * memory store's own per process) and the revision every change emitted so far is at or before.
   */
  streamHead(): { epoch: string; revision: number };
  /** True while the backing store answers. */
  healthy(): boolean;
}

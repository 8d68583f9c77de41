import { DiegoError, redactTask } from "@diego/models";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { TaskSchema, type Task, type TaskEvent, type TaskEventSchema } from "@diego/proto";
import type { TaskChange, TaskStore, TaskStoreEvent } from "../store/task-store.js";

export type TaskEventInit = MessageInitShape<typeof TaskEventSchema>;

/**
 * Fans the store's task changes out to WatchTasks subscribers. Each subscriber has a bounded buffer;
 * one that falls `bufferSize` events behind is cut off with RESOURCE_EXHAUSTED (it must re-list and
 * watch again) instead of making the BBS hold events for it.
 */
export class EventHub {
  private readonly subscribers = new Set<Subscription>();
  private unsubscribe?: () => void;

  constructor(
    private readonly store: TaskStore,
    private readonly bufferSize: number,
  ) {}

  start(): void {
    this.unsubscribe = this.store.subscribe((event) => this.publish(event));
  }

  stop(): void {
    this.unsubscribe?.();
    for (const s of this.subscribers) s.fail(new DiegoError("UNAVAILABLE", "the BBS is stopping"));
    this.subscribers.clear();
  }

  get size(): number {
    return this.subscribers.size;
  }

  /** Events from now on, for one domain or ("") all. */
  subscribe(domain: string): Subscription {
    const sub = new Subscription(domain, this.bufferSize, () => this.subscribers.delete(sub));
    this.subscribers.add(sub);
    return sub;
  }

  private publish(event: TaskStoreEvent): void {
    if (event.kind === "reset") {
      for (const s of this.subscribers)
        s.fail(new DiegoError("ABORTED", "the task event stream was reset; list the tasks and watch again"));
      return;
    }
    for (const s of this.subscribers) s.push(event);
  }
}

export class Subscription implements AsyncIterable<TaskEventInit> {
  private readonly queue: TaskChange[] = [];
  private waiting?: () => void;
  private error?: DiegoError;
  private closed = false;

  constructor(
    readonly domain: string,
    private readonly bufferSize: number,
    private readonly onClose: () => void,
  ) {}

  push(change: TaskChange): void {
    if (this.closed) return;
    if (this.domain && change.domain !== this.domain) return;
    if (this.queue.length >= this.bufferSize) {
      this.fail(
        new DiegoError(
          "RESOURCE_EXHAUSTED",
          `watcher fell ${this.bufferSize} events behind and was cut off; list the tasks and watch again`,
        ),
      );
      return;
    }
    this.queue.push(change);
    this.wakeUp();
  }

  fail(error: DiegoError): void {
    if (this.closed) return;
    this.error = error;
    this.queue.length = 0;
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    this.wakeUp();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TaskEventInit> {
    try {
      for (;;) {
        const change = this.queue.shift();
        if (change) {
          yield toEvent(change);
          continue;
        }
        if (this.error) throw this.error;
        if (this.closed) return;
        await new Promise<void>((resolve) => (this.waiting = resolve));
      }
    } finally {
      this.close();
    }
  }

  private wakeUp(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}

/** The wire form of a change; image_password never leaves the BBS in an event. */
export function toEvent(change: TaskChange): TaskEventInit {
  const task = (t: Task | undefined) => redactTask(t ?? create(TaskSchema, { taskGuid: change.guid }));
  switch (change.kind) {
    case "created":
      return { event: { case: "created", value: { task: task(change.after()) } } };
    case "changed":
      return { event: { case: "changed", value: { before: task(change.before()), after: task(change.after()) } } };
    case "removed":
      return { event: { case: "removed", value: { task: task(change.before()) } } };
  }
}

export type { TaskEvent };

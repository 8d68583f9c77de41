import { DiegoError, redactTask } from "@diego/models";
import { create, toBinary } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import {
  TaskChangedSchema,
  TaskCreatedSchema,
  TaskEventSchema,
  TaskRemovedSchema,
  TaskSchema,
  type Task,
  type TaskEvent,
} from "@diego/proto";
import type { TaskChange, TaskStore, TaskStoreEvent } from "../store/task-store.js";
import {
  comparePositions,
  formatResumeToken,
  parseResumeToken,
  WHOLE_REVISION,
  type StreamPosition,
} from "./resume-token.js";

/** How much the hub holds, for all subscribers and for each (docs/limits.md). */
export interface EventHubLimits {
  /** Events a subscriber may fall behind before it is cut off with RESOURCE_EXHAUSTED. */
  bufferSize: number;
  /** Encoded bytes a subscriber may fall behind before it is cut off. */
  bufferBytes: number;
  /** Events kept for resuming (WatchTasks resume_token), shared by every subscriber. */
  historySize: number;
  /** Encoded bytes of the events kept for resuming. */
  historyBytes: number;
  /** Concurrent WatchTasks streams of one caller. */
  maxWatchersPerCaller: number;
}

export const DEFAULT_EVENT_HUB_LIMITS: EventHubLimits = {
  bufferSize: 1024,
  bufferBytes: 8 * 1024 * 1024,
  historySize: 10_000,
  historyBytes: 64 * 1024 * 1024,
  maxWatchersPerCaller: 256,
};

/** Which tasks a subscriber wants: one domain ("" all) and labels that must all match. */
export interface EventSelector {
  domain: string;
  labels: Record<string, string>;
}

/**
 * One change as it goes out: encoded once (on first use) for every subscriber, carrying its position.
 * `message` is a TaskEvent whose oneof is the encoded bytes (protobuf-es writes unknown fields verbatim).
 */
export class HubEvent {
  private encoded?: TaskEvent;
  private size?: number;

  constructor(
    readonly change: TaskChange,
    readonly position: StreamPosition,
  ) {}

  get message(): TaskEvent {
    return (this.encoded ??= encodeEvent(this.change, formatResumeToken(this.position)));
  }

  /**
   * What the event weighs against the hub's byte limits, fixed at first use: the stored task bytes it
   * carries when the store knows them (an upper bound of the encoded event, which may be redacted), so
   * that an event nobody reads is never encoded; else its encoded size.
   */
  get bytes(): number {
    return (this.size ??= this.change.storedSize?.() ?? this.message.$unknown![0].data.length);
  }
}

/**
 * Fans the store's task changes out to WatchTasks subscribers. Each event is encoded once for all of
 * them; each subscriber has a buffer bounded by count and bytes, and one that falls behind it is cut
 * off with RESOURCE_EXHAUSTED (it must re-list and watch again) instead of making the BBS hold events
 * for it. The last events are kept (bounded) so that a stream can resume after a resume_token.
 */
export class EventHub {
  private readonly subscribers = new Set<Subscription>();
  private readonly perCaller = new Map<string, number>();
  /** The events kept for resuming are history[historyStart..]; the dropped head is cut off now and then. */
  private readonly history: HubEvent[] = [];
  private historyStart = 0;
  private historyBytes = 0;
  private head: StreamPosition = { epoch: "", revision: 0, seq: WHOLE_REVISION };
  /** The history holds every event after this position. */
  private floor: StreamPosition = this.head;
  private unsubscribe?: () => void;
  private readonly limits: EventHubLimits;

  constructor(
    private readonly store: TaskStore,
    limits: Partial<EventHubLimits> = {},
  ) {
    this.limits = { ...DEFAULT_EVENT_HUB_LIMITS, ...limits };
  }

  start(): void {
    this.restartHistory();
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

  /** The position of the last event published (what the live marker carries). */
  get position(): StreamPosition {
    return this.head;
  }

  /**
   * Events from now on for `caller` (or, given a resume_token, from after it: the kept ones first).
   * Throws RESOURCE_EXHAUSTED past the per-caller cap, OUT_OF_RANGE when the token is older than
   * what is kept, INVALID_ARGUMENT when it is no token of ours.
   */
  subscribe(selector: EventSelector, caller = "", resumeToken = ""): Subscription {
    const count = this.perCaller.get(caller) ?? 0;
    if (count >= this.limits.maxWatchersPerCaller) {
      throw new DiegoError(
        "RESOURCE_EXHAUSTED",
        `at most ${this.limits.maxWatchersPerCaller} concurrent WatchTasks streams per caller; close one first`,
      );
    }
    const replay = resumeToken ? this.eventsAfter(resumeToken) : [];
    this.perCaller.set(caller, count + 1);
    const sub = new Subscription(selector, this.limits, formatResumeToken(this.head), () => {
      this.subscribers.delete(sub);
      const left = (this.perCaller.get(caller) ?? 1) - 1;
      if (left > 0) this.perCaller.set(caller, left);
      else this.perCaller.delete(caller);
    });
    for (const ev of replay) sub.push(ev);
    this.subscribers.add(sub);
    return sub;
  }

  private eventsAfter(token: string): HubEvent[] {
    const after = parseResumeToken(token);
    if (!after) {
      throw new DiegoError("INVALID_ARGUMENT", "invalid request: resume_token: is not a resume_token this BBS issued", [
        { field: "resume_token", message: "is not a resume_token this BBS issued" },
      ]);
    }
    const relist = "list the tasks and watch again without a resume_token";
    if (after.epoch !== this.head.epoch) {
      throw new DiegoError("OUT_OF_RANGE", `resume_token is from another event history (a restarted BBS); ${relist}`);
    }
    if (comparePositions(after, this.floor) < 0) {
      throw new DiegoError("OUT_OF_RANGE", `the events after this resume_token are no longer kept; ${relist}`);
    }
    if (comparePositions(after, this.head) > 0) {
      throw new DiegoError("OUT_OF_RANGE", `resume_token is ahead of this BBS's event stream; ${relist}`);
    }
    const kept = this.history.slice(this.historyStart);
    return kept.filter((ev) => comparePositions(ev.position, after) > 0);
  }

  private publish(event: TaskStoreEvent): void {
    if (event.kind === "reset") {
      this.restartHistory();
      for (const s of this.subscribers)
        s.fail(new DiegoError("ABORTED", "the task event stream was reset; list the tasks and watch again"));
      return;
    }
    const seq = event.revision === this.head.revision && this.head.seq !== WHOLE_REVISION ? this.head.seq + 1 : 0;
    const ev = new HubEvent(event, { epoch: this.head.epoch, revision: event.revision, seq });
    this.head = ev.position;
    this.remember(ev);
    for (const s of this.subscribers) s.push(ev);
  }

  private remember(ev: HubEvent): void {
    this.history.push(ev);
    this.historyBytes += ev.bytes;
    const kept = () => this.history.length - this.historyStart;
    while (kept() > this.limits.historySize || (this.historyBytes > this.limits.historyBytes && kept() > 1)) {
      const dropped = this.history[this.historyStart]!;
      this.history[this.historyStart++] = undefined as never;
      this.historyBytes -= dropped.bytes;
      this.floor = dropped.position;
    }
    // Cut the dropped head off once it is as long as what is kept (amortized O(1) per event).
    if (this.historyStart > 1024 && this.historyStart >= kept()) {
      this.history.splice(0, this.historyStart);
      this.historyStart = 0;
    }
  }

  /** Nothing is kept from before now (start, or the store lost track and re-read everything). */
  private restartHistory(): void {
    const { epoch, revision } = this.store.streamHead();
    this.head = this.floor = { epoch, revision, seq: WHOLE_REVISION };
    this.history.length = 0;
    this.historyStart = 0;
    this.historyBytes = 0;
  }
}

export class Subscription implements AsyncIterable<TaskEvent> {
  private readonly queue: HubEvent[] = [];
  private queuedBytes = 0;
  private waiting?: () => void;
  private error?: DiegoError;
  private closed = false;

  constructor(
    readonly selector: EventSelector,
    private readonly limits: EventHubLimits,
    /** The position the live marker carries: resuming from it misses nothing. */
    private readonly liveToken: string,
    private readonly onClose: () => void,
  ) {}

  push(ev: HubEvent): void {
    if (this.closed || !matches(this.selector, ev.change)) return;
    const bytes = ev.bytes;
    if (
      this.queue.length >= this.limits.bufferSize ||
      (this.queue.length > 0 && this.queuedBytes + bytes > this.limits.bufferBytes)
    ) {
      this.fail(
        new DiegoError(
          "RESOURCE_EXHAUSTED",
          `watcher fell more than ${this.limits.bufferSize} events or ${this.limits.bufferBytes} bytes behind and was cut off; resume from the last resume_token or list the tasks and watch again`,
        ),
      );
      return;
    }
    this.queue.push(ev);
    this.queuedBytes += bytes;
    this.wakeUp();
  }

  fail(error: DiegoError): void {
    if (this.closed) return;
    this.error = error;
    this.queue.length = 0;
    this.queuedBytes = 0;
    this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
    this.wakeUp();
  }

  /** The live marker first, then the replayed events (if resuming), then every change as it happens. */
  async *[Symbol.asyncIterator](): AsyncIterator<TaskEvent> {
    try {
      yield create(TaskEventSchema, { event: { case: "live", value: {} }, resumeToken: this.liveToken });
      for (;;) {
        const ev = this.queue.shift();
        if (ev) {
          this.queuedBytes -= ev.bytes;
          yield ev.message;
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

/** Whether a change is one the selector wants (labels: every pair must match). Pure. */
export function matches(selector: EventSelector, change: TaskChange): boolean {
  if (selector.domain && change.domain !== selector.domain) return false;
  const wanted = Object.entries(selector.labels);
  if (wanted.length === 0) return true;
  const labels = (change.after() ?? change.before())?.labels ?? {};
  return wanted.every(([k, v]) => labels[k] === v);
}

const ONEOF_FIELD = { created: 1, changed: 2, removed: 3 } as const;

/** The wire form of a change, encoded once; image_password never leaves the BBS in an event. */
export function encodeEvent(change: TaskChange, resumeToken: string): TaskEvent {
  const message = create(TaskEventSchema, { resumeToken });
  const body = storedBody(change) ?? decodedBody(change);
  message.$unknown = [{ no: ONEOF_FIELD[change.kind], wireType: WireType.LengthDelimited, data: lengthPrefixed(body) }];
  return message;
}

/**
 * The event's body straight from the stored task bytes, when the store has them and they carry no
 * secret: TaskCreated, TaskChanged and TaskRemoved are only their tasks as length-delimited fields
 * 1 (task, before) and 2 (after), so no task is decoded and encoded again.
 */
function storedBody(change: TaskChange): Uint8Array | undefined {
  if (!change.publicBytes) return undefined;
  if (change.kind === "created") {
    const after = change.publicBytes("after");
    return after && concat(field(1, after));
  }
  const before = change.publicBytes("before");
  if (!before) return undefined;
  if (change.kind === "removed") return concat(field(1, before));
  const after = change.publicBytes("after");
  return after && concat(field(1, before), field(2, after));
}

function field(no: number, bytes: Uint8Array): Uint8Array[] {
  return [Uint8Array.of((no << 3) | WireType.LengthDelimited), lengthPrefixed(bytes)];
}

function concat(...parts: Uint8Array[][]): Uint8Array {
  return Buffer.concat(parts.flat());
}

function decodedBody(change: TaskChange): Uint8Array {
  const task = (t: Task | undefined) => redactTask(t ?? create(TaskSchema, { taskGuid: change.guid }));
  let body: Uint8Array;
  switch (change.kind) {
    case "created":
      body = toBinary(TaskCreatedSchema, create(TaskCreatedSchema, { task: task(change.after()) }));
      break;
    case "changed":
      body = toBinary(
        TaskChangedSchema,
        create(TaskChangedSchema, { before: task(change.before()), after: task(change.after()) }),
      );
      break;
    case "removed":
      body = toBinary(TaskRemovedSchema, create(TaskRemovedSchema, { task: task(change.before()) }));
      break;
  }
  return body;
}

function lengthPrefixed(body: Uint8Array): Uint8Array {
  const prefix: number[] = [];
  let n = body.length;
  while (n >= 0x80) {
    prefix.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  prefix.push(n);
  const out = new Uint8Array(prefix.length + body.length);
  out.set(prefix);
  out.set(body, prefix.length);
  return out;
}

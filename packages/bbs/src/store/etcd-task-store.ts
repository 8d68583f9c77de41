import type { Logger } from "@diego/kit";
import { DiegoError } from "@diego/models";
import type { Task } from "@diego/proto";
import type { ICompare, IKeyValue, IRequestOp, IWatchResponse, Watcher } from "etcd3";
import type { EtcdConnection } from "../etcd/etcd-connection.js";
import { prefixEnd, type Keys } from "../keys.js";
import { LazyTaskChange } from "./task-change.js";
import { IndexedTaskStore } from "./indexed-task-store.js";
import { TaskIndex } from "./task-index.js";
import { decodeTask, encodeTask, entryFromBytes, entryOf, type TaskEntry } from "./task-entry.js";
import type { ApplyResult, Mutation, TaskStore } from "./task-store.js";

export interface EtcdTaskStoreOptions {
  etcd: EtcdConnection;
  keys: Keys;
  logger: Logger;
  /** Attempts of one apply that keeps losing its compare-and-swap before it fails with ABORTED. */
  maxAttempts?: number;
  /** Most tasks written in one etcd transaction (etcd's --max-txn-ops defaults to 128). */
  maxBatch?: number;
  /** Most bytes of task values in one transaction (etcd's request limit is 1.5 MiB). */
  maxBatchBytes?: number;
  /** Transactions in flight at once; writes that arrive meanwhile wait and go together in the next. */
  maxInFlight?: number;
  /** Tasks read per range request when loading. */
  pageSize?: number;
  /** Called for each stored value that is not a readable Task (it is deleted). */
  onPruned?: () => void;
  /** Called after each write transaction: tasks in it, seconds it took, whether its compares held. */
  observeTxn?: (tasks: number, seconds: number, succeeded: boolean) => void;
}

interface PendingOp {
  guid: string;
  key: Buffer;
  mutate: Mutation;
  attempts: number;
  resolve(result: ApplyResult): void;
  reject(err: unknown): void;
}

interface Evaluated {
  op: PendingOp;
  /** Revision the mutation was judged against; 0 when the task was absent. */
  expected: number;
  before: Task | undefined;
  result?: ApplyResult;
  error?: unknown;
  bytes?: Uint8Array;
}

/**
 * Tasks in etcd, one key per task holding its protobuf bytes, with an in-memory index kept current by
 * an etcd watch (which also feeds TaskChange events, so every instance sees every instance's writes).
 *
 * Writes are compare-and-swap transactions. A write coalescer groups the applies that arrive while
 * earlier transactions are in flight into one transaction: each task contributes a compare on its
 * mod_revision (create_revision == 0 when absent) and its put or delete. When any compare fails, the
 * transaction's else branch reads every key of the batch, the index takes the fresh values, and each
 * apply goes again (only those that lost count an attempt). An apply whose mutation refused the task
 * still contributes its compare, so a refusal is only returned once etcd confirmed the task it judged.
 */
export class EtcdTaskStore extends IndexedTaskStore implements TaskStore {
  private readonly queue: PendingOp[] = [];
  private readonly busyKeys = new Set<string>();
  private readonly prefixBytes: number;
  private readonly maxAttempts: number;
  private readonly maxBatch: number;
  private readonly maxBatchBytes: number;
  private readonly maxInFlight: number;
  private readonly pageSize: number;
  private inFlight = 0;
  private flushScheduled = false;
  private watcher?: Watcher;
  private watchRevision = 0;
  private stopped = false;
  private resyncing = false;

  constructor(private readonly options: EtcdTaskStoreOptions) {
    super((err) => options.logger.error({ err }, "task event listener failed"));
    this.prefixBytes = Buffer.byteLength(options.keys.tasks);
    this.maxAttempts = options.maxAttempts ?? 8;
    this.maxBatch = Math.min(options.maxBatch ?? 128, 128);
    this.maxBatchBytes = options.maxBatchBytes ?? 1024 * 1024;
    this.maxInFlight = options.maxInFlight ?? 4;
    this.pageSize = options.pageSize ?? 2_000;
  }

  private get etcd() {
    return this.options.etcd;
  }

  async start(): Promise<void> {
    const revision = await this.load();
    await this.watchFrom(revision + 1);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const watcher = this.watcher;
    this.watcher = undefined;
    if (watcher) await watcher.cancel().catch(() => undefined);
    for (const op of this.queue.splice(0)) op.reject(new DiegoError("UNAVAILABLE", "the BBS is stopping"));
    this.unsubscribeAll();
  }

  get size(): number {
    return this.index.size;
  }

  healthy(): boolean {
    return this.etcd.healthy() && this.watcher !== undefined && !this.resyncing;
  }

  apply(guid: string, mutate: Mutation): Promise<ApplyResult> {
    if (this.stopped) return Promise.reject(new DiegoError("UNAVAILABLE", "the BBS is stopping"));
    return new Promise((resolve, reject) => {
      this.queue.push({ guid, key: Buffer.from(this.options.keys.task(guid)), mutate, attempts: 0, resolve, reject });
      this.scheduleFlush();
    });
  }

  // ---- loading and watching ----

  /** Reads every task at one revision into the index; returns that revision. */
  private async load(): Promise<number> {
    const prefix = this.options.keys.tasks;
    const end = prefixEnd(prefix);
    let start = Buffer.from(prefix);
    let revision = 0;
    const fresh = new TaskIndex();
    for (;;) {
      const res = await this.etcd.client.kv.range(
        { key: start, range_end: end, limit: this.pageSize, revision },
        this.etcd.callOptions(30_000),
      );
      if (revision === 0) revision = Number(res.header.revision);
      for (const kv of res.kvs) {
        const entry = this.readable(kv);
        if (entry) fresh.put(entry);
      }
      if (!res.more || res.kvs.length === 0) break;
      start = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
    this.index.clear();
    for (const entry of fresh.values()) this.index.put(entry);
    this.watchRevision = revision;
    this.options.logger.info({ tasks: this.index.size, revision }, "tasks loaded from etcd");
    return revision;
  }

  private async watchFrom(revision: number): Promise<void> {
    const watcher = await this.etcd.client
      .watch()
      .prefix(this.options.keys.tasks)
      .withPreviousKV()
      .startRevision(String(revision))
      .create();
    if (this.stopped) {
      await watcher.cancel().catch(() => undefined);
      return;
    }
    watcher.on("data", (res: IWatchResponse) => this.onWatch(res));
    watcher.on("disconnected", (err: Error) => {
      this.options.logger.warn({ err: err.message }, "etcd watch disconnected; resuming");
      this.etcd.reportFailure();
    });
    watcher.on("connected", () => this.options.logger.debug("etcd watch connected"));
    watcher.on("error", (err: Error) => {
      // e.g. the revision to resume from was compacted: re-read everything and start over.
      this.options.logger.warn({ err: err.message }, "etcd watch failed; reloading every task");
      void this.resync(watcher);
    });
    this.watcher = watcher;
  }

  private async resync(failed: Watcher): Promise<void> {
    if (this.watcher !== failed || this.stopped) return;
    this.resyncing = true;
    this.watcher = undefined;
    await failed.cancel().catch(() => undefined);
    for (let delay = 250; !this.stopped; delay = Math.min(delay * 2, 5_000)) {
      try {
        const revision = await this.load();
        this.emit({ kind: "reset" });
        await this.watchFrom(revision + 1);
        break;
      } catch (err) {
        this.options.logger.warn({ err: (err as Error).message }, "reloading tasks failed; retrying");
        await new Promise((r) => setTimeout(r, delay));
      }
    }
    this.resyncing = false;
  }

  private onWatch(res: IWatchResponse): void {
    for (const ev of res.events) {
      const guid = ev.kv.key.subarray(this.prefixBytes).toString();
      const revision = Number(ev.kv.mod_revision);
      const prev = ev.prev_kv?.value;
      if (ev.type === "Put") {
        const value = ev.kv.value;
        // Our own writes are in the index already; only newer values of other writers are decoded.
        if (revision > this.index.revisionOf(guid)) {
          const entry = this.readable(ev.kv);
          if (!entry) continue;
          this.index.put(entry);
        }
        const entry = this.index.get(guid);
        const hint = entry?.revision === revision ? entry.domain : undefined;
        const kind = ev.kv.version === "1" || !prev ? "created" : "changed";
        this.emit(new LazyTaskChange(kind, guid, prev, value, hint));
      } else {
        const removed = this.index.remove(guid, revision, false);
        this.emit(new LazyTaskChange("removed", guid, prev ?? removed?.bytes, undefined, removed?.domain));
      }
    }
    const headerRevision = Number(res.header.revision);
    if (headerRevision > this.watchRevision) this.watchRevision = headerRevision;
    this.index.pruneTombstones(this.watchRevision);
  }

  /**
   * The entry of a stored value, or undefined when it is not a Task (written by something else, or
   * damaged): such a value is logged and deleted (Diego prunes unreadable records), never a crash.
   */
  private readable(kv: IKeyValue): TaskEntry | undefined {
    try {
      return entryFromBytes(Buffer.from(kv.value), Number(kv.mod_revision));
    } catch (err) {
      const key = kv.key.toString();
      this.options.logger.error({ key, err: (err as Error).message }, "unreadable task in etcd; deleting it");
      this.options.onPruned?.();
      void this.etcd.client.kv
        .txn({
          compare: [{ key: kv.key, target: "Mod", result: "Equal", mod_revision: kv.mod_revision }],
          success: [{ request_delete_range: { key: kv.key } }],
        })
        .catch(() => undefined);
      return undefined;
    }
  }

  // ---- the write coalescer ----

  private scheduleFlush(): void {
    if (this.flushScheduled || this.inFlight >= this.maxInFlight || this.queue.length === 0) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.maxInFlight && this.queue.length > 0) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.inFlight++;
      for (const op of batch) this.busyKeys.add(op.guid);
      this.runBatch(batch)
        .catch((err: unknown) => {
          this.options.logger.error({ err }, "task write batch failed unexpectedly");
          for (const op of batch) op.reject(err);
        })
        .finally(() => {
          for (const op of batch) this.busyKeys.delete(op.guid);
          this.inFlight--;
          this.scheduleFlush();
        });
    }
  }

  /** Takes, in arrival order, up to maxBatch ops of distinct tasks that have no write in flight. */
  private takeBatch(): PendingOp[] {
    const batch: PendingOp[] = [];
    const inBatch = new Set<string>();
    const rest: PendingOp[] = [];
    for (const op of this.queue) {
      if (batch.length < this.maxBatch && !this.busyKeys.has(op.guid) && !inBatch.has(op.guid)) {
        batch.push(op);
        inBatch.add(op.guid);
      } else rest.push(op);
    }
    this.queue.length = 0;
    this.queue.push(...rest);
    return batch;
  }

  private async runBatch(batch: PendingOp[]): Promise<void> {
    const compare: ICompare[] = [];
    const success: IRequestOp[] = [];
    const failure: IRequestOp[] = [];
    const evaluated: Evaluated[] = [];
    let bytesInBatch = 0;
    for (const op of batch) {
      const entry = this.index.get(op.guid);
      const before = entry && decodeTask(entry.bytes);
      const ev: Evaluated = { op, expected: entry?.revision ?? 0, before };
      try {
        const outcome = op.mutate(before);
        ev.result = { before, outcome };
        if (outcome.kind === "put") {
          ev.bytes = encodeTask(outcome.task);
          bytesInBatch += ev.bytes.length;
        }
      } catch (err) {
        ev.error = err;
      }
      // Too big to go with the others: send it in the next transaction (a batch always keeps its first).
      if (evaluated.length > 0 && bytesInBatch > this.maxBatchBytes) {
        this.queue.unshift(op);
        this.busyKeys.delete(op.guid);
        continue;
      }
      evaluated.push(ev);
      compare.push(
        entry
          ? { key: op.key, target: "Mod", result: "Equal", mod_revision: entry.revision }
          : { key: op.key, target: "Create", result: "Equal", create_revision: 0 },
      );
      if (ev.result?.outcome.kind === "put")
        success.push({
          request_put: {
            key: op.key,
            value: Buffer.from(ev.bytes!.buffer, ev.bytes!.byteOffset, ev.bytes!.byteLength),
          },
        });
      else if (ev.result?.outcome.kind === "delete") success.push({ request_delete_range: { key: op.key } });
      failure.push({ request_range: { key: op.key } });
    }
    // Ops deferred for size were removed from this batch; keep busyKeys accurate for the rest.
    batch.length = 0;
    batch.push(...evaluated.map((e) => e.op));

    let res;
    const started = process.hrtime.bigint();
    try {
      res = await this.etcd.client.kv.txn({ compare, success, failure }, this.etcd.callOptions());
      this.options.observeTxn?.(evaluated.length, Number(process.hrtime.bigint() - started) / 1e9, res.succeeded);
    } catch (err) {
      this.etcd.reportFailure();
      const error = new DiegoError("UNAVAILABLE", `etcd: ${(err as Error).message}`);
      for (const e of evaluated) e.op.reject(error);
      return;
    }
    const revision = Number(res.header.revision);
    if (res.succeeded) {
      for (const e of evaluated) {
        const outcome = e.result?.outcome;
        if (outcome?.kind === "put") this.index.put(entryOf(outcome.task, e.bytes!, revision));
        else if (outcome?.kind === "delete") this.index.remove(e.op.guid, revision, true);
        if (e.result) e.op.resolve(e.result);
        else e.op.reject(e.error);
      }
      return;
    }
    // Someone else wrote one of these tasks: take the fresh values and go again.
    let anyConflict = false;
    const again: PendingOp[] = [];
    evaluated.forEach((e, i) => {
      const kv: IKeyValue | undefined = res.responses[i]?.response_range?.kvs?.[0];
      const current = kv ? Number(kv.mod_revision) : 0;
      const fresh = kv && this.readable(kv);
      if (fresh) this.index.put(fresh);
      else this.index.remove(e.op.guid, revision, true);
      if (current !== e.expected) {
        anyConflict = true;
        e.op.attempts++;
      }
      again.push(e.op);
    });
    if (!anyConflict) for (const op of again) op.attempts++;
    const retry: PendingOp[] = [];
    for (const op of again) {
      if (op.attempts >= this.maxAttempts) {
        op.reject(
          new DiegoError(
            "ABORTED",
            `task ${JSON.stringify(op.guid)} changed ${op.attempts} times while being updated; try again`,
          ),
        );
      } else retry.push(op);
    }
    this.queue.unshift(...retry);
  }
}

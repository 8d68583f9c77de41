import type { Logger } from "@diego/kit";
import { DiegoError } from "@diego/models";
import type { IKeyValue, IWatchResponse, Watcher } from "etcd3";
import type { EtcdConnection } from "../etcd/etcd-connection.js";
import { prefixEnd, type Keys } from "../keys.js";
import { EtcdWriteCoalescer, type EtcdWriteCoalescerOptions } from "./etcd-write-coalescer.js";
import { IndexedTaskStore } from "./indexed-task-store.js";
import { LazyTaskChange } from "./task-change.js";
import { entryFromBytes, type TaskEntry } from "./task-entry.js";
import { TaskIndex } from "./task-index.js";
import type { TaskSealer } from "./task-sealer.js";
import type { ApplyResult, Mutation, TaskStore } from "./task-store.js";

export interface EtcdTaskStoreOptions extends Pick<
  EtcdWriteCoalescerOptions,
  "maxAttempts" | "maxBatch" | "maxBatchBytes" | "maxTaskBytes" | "maxInFlight" | "observeTxn"
> {
  etcd: EtcdConnection;
  keys: Keys;
  logger: Logger;
  /** Tasks read per range request when loading. */
  pageSize?: number;
  /** Encryption at rest of tasks that carry secrets; without it they are stored as they are. */
  sealer?: TaskSealer;
  /** Called for each stored value that is not a readable Task (it is deleted). */
  onPruned?: () => void;
}

/**
 * Tasks in etcd, one key per task holding its protobuf bytes, with an in-memory index kept current by
 * an etcd watch (which also feeds TaskChange events, so every instance sees every instance's writes).
 * This class loads, watches and resyncs (after the watch fails, e.g. its revision was compacted);
 * writes go through the EtcdWriteCoalescer, which batches compare-and-swap transactions.
 */
export class EtcdTaskStore extends IndexedTaskStore implements TaskStore {
  private readonly prefixBytes: number;
  private readonly pageSize: number;
  private readonly writes: EtcdWriteCoalescer;
  private watcher?: Watcher;
  private watchRevision = 0;
  private stopped = false;
  private resyncing = false;

  constructor(private readonly options: EtcdTaskStoreOptions) {
    super((err) => options.logger.error({ err }, "task event listener failed"));
    this.prefixBytes = Buffer.byteLength(options.keys.tasks);
    this.pageSize = options.pageSize ?? 2_000;
    this.writes = new EtcdWriteCoalescer({
      ...options,
      index: this.index,
      keyOf: (guid) => options.keys.task(guid),
      readable: (kv) => this.readable(kv),
      seal: options.sealer && ((bytes, secret) => options.sealer!.seal(bytes, secret)),
    });
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
    this.writes.rejectQueued(new DiegoError("UNAVAILABLE", "the BBS is stopping"));
    this.unsubscribeAll();
  }

  get size(): number {
    return this.index.size;
  }

  streamHead(): { epoch: string; revision: number } {
    return { epoch: "etcd", revision: this.watchRevision };
  }

  healthy(): boolean {
    return this.etcd.healthy() && this.watcher !== undefined && !this.resyncing;
  }

  apply(guid: string, mutate: Mutation): Promise<ApplyResult> {
    if (this.stopped) return Promise.reject(new DiegoError("UNAVAILABLE", "the BBS is stopping"));
    return this.writes.apply(guid, mutate);
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
    const watcher = await this.etcd.watch((w) =>
      w.prefix(this.options.keys.tasks).withPreviousKV().startRevision(String(revision)),
    );
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
      const prev = ev.prev_kv?.value && this.openedOrUndefined(ev.prev_kv.value);
      if (ev.type === "Put") {
        const value = this.openedOrUndefined(ev.kv.value);
        // Our own writes are in the index already; only newer values of other writers are decoded.
        if (revision > this.index.revisionOf(guid)) {
          const entry = this.readable(ev.kv);
          if (!entry) continue;
          this.index.put(entry);
        }
        const entry = this.index.get(guid);
        const hint = entry?.revision === revision ? entry.domain : undefined;
        const kind = ev.kv.version === "1" || !prev ? "created" : "changed";
        this.emit(new LazyTaskChange(kind, guid, revision, prev, value, hint));
      } else {
        const removed = this.index.remove(guid, revision, false);
        this.emit(new LazyTaskChange("removed", guid, revision, prev ?? removed?.bytes, undefined, removed?.domain));
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
  /** The Task bytes of a stored value: opened when sealed (throws when its key is not configured). */
  private opened(value: Buffer): Buffer {
    const v = Buffer.from(value);
    if (v[0] !== 0) return v;
    if (!this.options.sealer) throw new Error("task is sealed, and no encryption key is configured");
    return Buffer.from(this.options.sealer.open(v));
  }

  private openedOrUndefined(value: Buffer): Buffer | undefined {
    try {
      return this.opened(value);
    } catch {
      return undefined;
    }
  }

  private readable(kv: IKeyValue): TaskEntry | undefined {
    try {
      return entryFromBytes(this.opened(kv.value), Number(kv.mod_revision));
    } catch (err) {
      const key = kv.key.toString();
      this.options.logger.error({ key, err: (err as Error).message }, "unreadable task in etcd; deleting it");
      this.options.onPruned?.();
      void this.etcd.client.kv
        .txn(
          {
            compare: [{ key: kv.key, target: "Mod", result: "Equal", mod_revision: kv.mod_revision }],
            success: [{ request_delete_range: { key: kv.key } }],
          },
          this.etcd.callOptions(),
        )
        .catch(() => undefined);
      return undefined;
    }
  }
}

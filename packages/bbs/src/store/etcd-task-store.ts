import type { Logger } from "@diego/kit";
import { DiegoError } from "@diego/models";
import type { IKeyValue, IWatchResponse, Watcher } from "etcd3";
import type { EtcdConnection } from "../etcd/etcd-connection.js";
import { prefixEnd, type Keys } from "../keys.js";
import { EtcdWriteCoalescer, type EtcdWriteCoalescerOptions } from "./etcd-write-coalescer.js";
import { IndexedTaskStore } from "./indexed-task-store.js";
import { LazyTaskChange } from "./task-change.js";
import { entryFromBytes, entryOf, type TaskEntry } from "./task-entry.js";
import { TaskIndex } from "./task-index.js";
import type { TaskSealer } from "./task-sealer.js";
import type { ApplyResult, Mutation, TaskStore } from "./task-store.js";

/** A task's bytes as the watch last showed them, and its domain when known without decoding. */
interface WatchedValue {
  bytes: Uint8Array;
  domain?: string;
}

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
  /** The highest revision of an event the watch has delivered. */
  private watchedEvents = 0;
  /**
   * What the watch last showed of each task whose index entry runs ahead of it (this instance's own
   * writes, fresh values read after a lost compare): the "before" of the task's next watch event. Every
   * other task's index entry is what the watch last showed. This spares asking etcd for prev_kv.
   */
  private readonly behindIndex = new Map<string, WatchedValue | undefined>();
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
      beforeIndexChange: (guid) => {
        if (this.behindIndex.has(guid)) return;
        const entry = this.index.get(guid);
        this.behindIndex.set(guid, entry && { bytes: entry.bytes, domain: entry.domain });
      },
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
    this.behindIndex.clear();
    for (const entry of fresh.values()) this.index.put(entry);
    this.watchRevision = revision;
    this.watchedEvents = revision;
    this.options.logger.info({ tasks: this.index.size, revision }, "tasks loaded from etcd");
    return revision;
  }

  private async watchFrom(revision: number): Promise<void> {
    const watcher = await this.etcd.watch((w) => w.prefix(this.options.keys.tasks).startRevision(String(revision)));
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

  /**
   * Applies the watch's events to the index and emits them. The "before" of each event is what the
   * watch showed of the task until then (events come in revision order): the index entry, or, for a
   * task whose entry runs ahead of the watch, what `behindIndex` kept of it.
   */
  private onWatch(res: IWatchResponse): void {
    for (const ev of res.events) {
      const guid = ev.kv.key.subarray(this.prefixBytes).toString();
      const revision = Number(ev.kv.mod_revision);
      const prev = this.behindIndex.has(guid) ? this.behindIndex.get(guid) : this.index.get(guid);
      let now: WatchedValue | undefined;
      if (ev.type === "Put") {
        let value: Uint8Array | undefined;
        let domain: string | undefined;
        const known = this.index.get(guid);
        if (known?.revision === revision) {
          // Our own write (or a value read after a lost compare): in the index already, as it is in etcd.
          value = known.bytes;
          domain = known.domain;
        } else if (revision > this.index.revisionOf(guid)) {
          // Mostly our own write, delivered before its transaction's answer: its Task is known.
          const sent = this.writes.sentTask(guid, ev.kv.value);
          const entry = sent ? entryOf(sent.task, sent.bytes, revision) : this.readable(ev.kv);
          if (!entry) continue;
          this.index.put(entry);
          value = entry.bytes;
          domain = entry.domain;
        } else {
          // The index already holds a newer value: this one is only passed on.
          value = this.openedOrUndefined(ev.kv.value);
        }
        const kind = ev.kv.version === "1" || !prev ? "created" : "changed";
        this.emit(new LazyTaskChange(kind, guid, revision, prev?.bytes, value, domain));
        now = value && { bytes: value, domain };
      } else {
        const removed = this.index.remove(guid, revision, false);
        this.emit(
          new LazyTaskChange(
            "removed",
            guid,
            revision,
            prev?.bytes ?? removed?.bytes,
            undefined,
            prev?.domain ?? removed?.domain,
          ),
        );
      }
      if (this.index.revisionOf(guid) > revision) this.behindIndex.set(guid, now);
      else this.behindIndex.delete(guid);
      if (revision > this.watchedEvents) this.watchedEvents = revision;
    }
    const headerRevision = Number(res.header.revision);
    if (headerRevision > this.watchRevision) this.watchRevision = headerRevision;
    // A task whose index entry the watch has passed is no longer ahead (e.g. a value read after a lost
    // compare that the watch had already delivered).
    if (this.behindIndex.size > 0)
      for (const guid of this.behindIndex.keys())
        if (this.index.revisionOf(guid) <= this.watchedEvents) this.behindIndex.delete(guid);
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

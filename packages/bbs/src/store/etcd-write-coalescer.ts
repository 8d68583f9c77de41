import type { Logger } from "@diego/kit";
import { DiegoError } from "@diego/models";
import type { Task } from "@diego/proto";
import type { ICompare, IKeyValue, IRequestOp } from "etcd3";
import { isEtcdUnreachable, type EtcdConnection } from "../etcd/etcd-connection.js";
import { decodeTask, encodeTask, entryOf, type TaskEntry } from "./task-entry.js";
import type { TaskIndex } from "./task-index.js";
import { checkStoredTaskSize, MAX_STORED_TASK_BYTES } from "./task-size.js";
import type { ApplyResult, Mutation } from "./task-store.js";

export interface EtcdWriteCoalescerOptions {
  etcd: EtcdConnection;
  /** The index the store reads from: mutations judge its entries, and committed writes go into it. */
  index: TaskIndex;
  /** The etcd key of a task. */
  keyOf: (guid: string) => string;
  /** The value stored for a task's bytes (sealed when it carries secrets); default: the bytes. */
  seal?: (bytes: Uint8Array, secret: boolean) => Uint8Array;
  /** The entry of a stored value, or undefined when it is not a readable Task. */
  readable: (kv: IKeyValue) => TaskEntry | undefined;
  logger: Logger;
  /** Attempts of one apply that keeps losing its compare-and-swap before it fails with ABORTED. */
  maxAttempts?: number;
  /** Most tasks written in one etcd transaction (etcd's --max-txn-ops defaults to 128). */
  maxBatch?: number;
  /** Most bytes of task values in one transaction (etcd's request limit is 1.5 MiB). */
  maxBatchBytes?: number;
  /** Largest stored value of one task; a bigger one is refused RESOURCE_EXHAUSTED without being sent. */
  maxTaskBytes?: number;
  /** Transactions in flight at once; writes that arrive meanwhile wait and go together in the next. */
  maxInFlight?: number;
  /**
   * Called before the coalescer changes the index entry of a task (a committed write, a fresh value read
   * after a lost compare): the index then runs ahead of the store's watch for that task.
   */
  beforeIndexChange?: (guid: string) => void;
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

interface SentPut {
  stored: Uint8Array;
  bytes: Uint8Array;
  task: Task;
}

interface Evaluated {
  op: PendingOp;
  /** Revision the mutation was judged against; 0 when the task was absent. */
  expected: number;
  before: Task | undefined;
  result?: ApplyResult;
  error?: unknown;
  bytes?: Uint8Array;
  /** What goes to etcd: the bytes, sealed when the task carries secrets. */
  stored?: Uint8Array;
}

/**
 * The etcd task store's write path. Writes are compare-and-swap transactions, and the applies that
 * arrive while earlier transactions are in flight go together in one transaction: each task
 * contributes a compare on its mod_revision (create_revision == 0 when absent) and its put or
 * delete. When any compare fails, the transaction's else branch reads every key of the batch, the
 * index takes the fresh values, and each apply goes again (only those that lost count an attempt).
 * An apply whose mutation refused the task still contributes its compare, so a refusal is only
 * returned once etcd confirmed the task it judged.
 */
export class EtcdWriteCoalescer {
  private readonly queue: PendingOp[] = [];
  private readonly busyKeys = new Set<string>();
  private readonly maxAttempts: number;
  private readonly maxBatch: number;
  private readonly maxBatchBytes: number;
  private readonly maxTaskBytes: number;
  private readonly maxInFlight: number;
  private inFlight = 0;
  private flushScheduled = false;
  /**
   * The tasks this coalescer wrote last, as the Task objects the mutations made (by guid, with the
   * revision etcd gave them): the next transition of a task mostly follows soon after its last, and
   * judges this object instead of decoding the stored bytes again. Bounded; mutations never modify a Task.
   */
  private readonly written = new Map<string, { revision: number; task: Task }>();
  /** The puts of the transactions in flight, by guid: what they store, and the Task it encodes. */
  private readonly sending = new Map<string, SentPut>();

  constructor(private readonly o: EtcdWriteCoalescerOptions) {
    this.maxAttempts = o.maxAttempts ?? 8;
    this.maxBatch = Math.min(o.maxBatch ?? 128, 128);
    this.maxBatchBytes = o.maxBatchBytes ?? 1024 * 1024;
    this.maxTaskBytes = o.maxTaskBytes ?? MAX_STORED_TASK_BYTES;
    this.maxInFlight = o.maxInFlight ?? 4;
  }

  apply(guid: string, mutate: Mutation): Promise<ApplyResult> {
    return new Promise((resolve, reject) => {
      this.queue.push({ guid, key: Buffer.from(this.o.keyOf(guid)), mutate, attempts: 0, resolve, reject });
      this.scheduleFlush();
    });
  }

  /**
   * The task a stored value of a write still in flight encodes (the watch may deliver a write before
   * its transaction's answer comes back), or undefined when no write in flight stores exactly that value.
   */
  sentTask(guid: string, stored: Uint8Array): { task: Task; bytes: Uint8Array } | undefined {
    const sent = this.sending.get(guid);
    return sent && Buffer.compare(sent.stored, stored) === 0 ? sent : undefined;
  }

  /** Fails every write that has not been sent yet. */
  rejectQueued(err: unknown): void {
    for (const op of this.queue.splice(0)) op.reject(err);
  }

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
          this.o.logger.error({ err }, "task write batch failed unexpectedly");
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

  private remember(guid: string, revision: number, task: Task): void {
    this.written.delete(guid);
    this.written.set(guid, { revision, task });
    if (this.written.size > WRITTEN_TASKS_KEPT) this.written.delete(this.written.keys().next().value!);
  }

  private async runBatch(batch: PendingOp[]): Promise<void> {
    const compare: ICompare[] = [];
    const success: IRequestOp[] = [];
    const failure: IRequestOp[] = [];
    const evaluated: Evaluated[] = [];
    let bytesInBatch = 0;
    for (const op of batch) {
      const entry = this.o.index.get(op.guid);
      const hit = entry && this.written.get(op.guid);
      const before = entry && (hit?.revision === entry.revision ? hit.task : decodeTask(entry.bytes));
      const ev: Evaluated = { op, expected: entry?.revision ?? 0, before };
      try {
        const outcome = op.mutate(before);
        if (outcome.kind === "put") {
          const bytes = encodeTask(outcome.task);
          const secret = outcome.task.imagePassword !== "" || outcome.task.secretEnv.length > 0;
          const stored = this.o.seal ? this.o.seal(bytes, secret) : bytes;
          checkStoredTaskSize(op.guid, stored, this.maxTaskBytes);
          ev.bytes = bytes;
          ev.stored = stored;
          bytesInBatch += stored.length;
        }
        ev.result = { before, outcome };
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
            value: Buffer.from(ev.stored!.buffer, ev.stored!.byteOffset, ev.stored!.byteLength),
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
    for (const e of evaluated)
      if (e.result?.outcome.kind === "put")
        this.sending.set(e.op.guid, { stored: e.stored!, bytes: e.bytes!, task: e.result.outcome.task });
    try {
      res = await this.o.etcd.client.kv.txn({ compare, success, failure }, this.o.etcd.callOptions());
      this.o.observeTxn?.(evaluated.length, Number(process.hrtime.bigint() - started) / 1e9, res.succeeded);
    } catch (err) {
      for (const e of evaluated) this.sending.delete(e.op.guid);
      const error = etcdWriteError(err as Error);
      if (error.code === "UNAVAILABLE") this.o.etcd.reportFailure();
      for (const e of evaluated) e.op.reject(error);
      return;
    }
    for (const e of evaluated) this.sending.delete(e.op.guid);
    const revision = Number(res.header.revision);
    if (res.succeeded) {
      for (const e of evaluated) {
        const outcome = e.result?.outcome;
        if (outcome?.kind === "put") {
          this.o.beforeIndexChange?.(e.op.guid);
          this.o.index.put(entryOf(outcome.task, e.bytes!, revision));
          this.remember(e.op.guid, revision, outcome.task);
        } else if (outcome?.kind === "delete") {
          this.o.beforeIndexChange?.(e.op.guid);
          this.o.index.remove(e.op.guid, revision, true);
          this.written.delete(e.op.guid);
        }
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
      const fresh = kv && this.o.readable(kv);
      this.o.beforeIndexChange?.(e.op.guid);
      if (fresh) this.o.index.put(fresh);
      else this.o.index.remove(e.op.guid, revision, true);
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

/** Most Task objects the coalescer keeps of its last writes (a few MiB). */
const WRITTEN_TASKS_KEPT = 4_096;

/** The error a failed write transaction gives its callers: etcd's refusal of this one request, or etcd unreachable. */
function etcdWriteError(err: Error): DiegoError {
  if (!isEtcdUnreachable(err) && /too large|larger than max|exhaust/i.test(err.message))
    return new DiegoError("RESOURCE_EXHAUSTED", `etcd refused the write: ${err.message}`);
  return new DiegoError("UNAVAILABLE", `etcd: ${err.message}`);
}

import { planEviction } from "./log-eviction.js";

/** Which output of a process a log line came from. */
export type LogStream = "stdout" | "stderr";

export interface StoredLine {
  /** Unix nanoseconds. */
  timestamp: bigint;
  source: string;
  stream: LogStream;
  message: string;
  logGuid: string;
}

export interface TaskLogStoreOptions {
  /** Lines kept per task; the oldest go first. */
  maxLines?: number;
  /** Bytes of message kept per task; the oldest lines go first. */
  maxBytes?: number;
  /**
   * Bytes of message kept across every task on the cell; past it the logs of finished tasks go
   * (oldest first), then the oldest lines of the biggest running ones, down to 90% of it.
   */
  maxTotalBytes?: number;
  /** How long a task's lines stay after it ends. */
  retentionMs: number;
  now?: () => bigint;
}

class TaskLog {
  lines: StoredLine[] = [];
  /** Absolute index of lines[0]. */
  first = 0;
  bytes = 0;
  ended = false;
  /** Order of ending, for the cell-wide budget (the log that ended first goes first). */
  endedSeq = 0;
  timer?: NodeJS.Timeout;
  readonly waiters = new Set<() => void>();

  constructor(public logGuid: string) {}

  wake(): void {
    for (const w of this.waiters) w();
    this.waiters.clear();
  }
}

/**
 * Every task's output on this cell, tagged with log_guid, source and stream, in a bounded buffer per
 * task; kept for `retentionMs` after the task ends, then forgotten. Readers get what is there and, with
 * follow, the lines that come until the task ends.
 */
export class TaskLogStore {
  private readonly logs = new Map<string, TaskLog>();
  private readonly maxLines: number;
  private readonly maxBytes: number;
  private readonly maxTotalBytes: number;
  /** Bytes of message held across every log. */
  private total = 0;
  private endedCount = 0;

  constructor(private readonly options: TaskLogStoreOptions) {
    this.maxLines = options.maxLines ?? 10_000;
    this.maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
    this.maxTotalBytes = options.maxTotalBytes ?? 256 * 1024 * 1024;
  }

  /** Bytes of message held across every task's log (for the cell-wide budget). */
  get totalBytes(): number {
    return this.total;
  }

  private remove(taskGuid: string, log: TaskLog): void {
    if (this.logs.get(taskGuid) !== log) return;
    this.logs.delete(taskGuid);
    this.total -= log.bytes;
  }

  /** Drops a log's oldest lines until `bytes` are gone, keeping its newest line. */
  private dropOldest(log: TaskLog, bytes: number): void {
    let dropped = 0;
    while ((dropped < bytes && log.lines.length > 1) || log.lines.length > this.maxLines) {
      const line = log.lines.shift()!;
      const size = Buffer.byteLength(line.message);
      log.bytes -= size;
      this.total -= size;
      dropped += size;
      log.first++;
    }
  }

  /** Keeps every log together within maxTotalBytes (docs/limits.md, "Settings of the cell"). */
  private enforceTotal(): void {
    if (this.total <= this.maxTotalBytes) return;
    const usage = [...this.logs].map(([taskGuid, log]) => ({
      taskGuid,
      bytes: log.bytes,
      ended: log.ended,
      endedSeq: log.endedSeq,
    }));
    const plan = planEviction(usage, Math.floor(this.maxTotalBytes * 0.9));
    for (const guid of plan.evict) {
      const log = this.logs.get(guid);
      if (!log) continue;
      clearTimeout(log.timer);
      this.remove(guid, log);
      log.wake();
    }
    for (const [guid, bytes] of plan.trim) {
      const log = this.logs.get(guid);
      if (log) this.dropOldest(log, bytes);
    }
  }

  /**
   * Starts (or restarts, after an earlier run of the same guid) a task's log. A log opened before the
   * task's log_guid is known (at the claim) takes it when it is opened again with one.
   */
  open(taskGuid: string, logGuid: string): void {
    const old = this.logs.get(taskGuid);
    if (old && !old.ended) {
      if (logGuid) old.logGuid = logGuid;
      return;
    }
    if (old) {
      clearTimeout(old.timer);
      this.remove(taskGuid, old);
      old.wake();
    }
    this.logs.set(taskGuid, new TaskLog(logGuid));
  }

  append(taskGuid: string, line: Omit<StoredLine, "timestamp" | "logGuid">): void {
    const log = this.logs.get(taskGuid);
    if (!log || log.ended) return;
    const now = this.options.now?.() ?? BigInt(Date.now()) * 1_000_000n;
    log.lines.push({ ...line, timestamp: now, logGuid: log.logGuid });
    const size = Buffer.byteLength(line.message);
    log.bytes += size;
    this.total += size;
    this.dropOldest(log, log.bytes - this.maxBytes);
    this.enforceTotal();
    log.wake();
  }

  /** The task ended: followers finish, and the lines go after the retention time. */
  end(taskGuid: string): void {
    const log = this.logs.get(taskGuid);
    if (!log || log.ended) return;
    log.ended = true;
    log.endedSeq = ++this.endedCount;
    log.wake();
    log.timer = setTimeout(() => this.remove(taskGuid, log), this.options.retentionMs);
    log.timer.unref();
  }

  /** Forgets a log that never got a line worth keeping (the task was not claimed here after all). */
  discard(taskGuid: string): void {
    const log = this.logs.get(taskGuid);
    if (!log || log.ended) return;
    this.remove(taskGuid, log);
    log.ended = true;
    log.wake();
  }

  has(taskGuid: string): boolean {
    return this.logs.has(taskGuid);
  }

  isEnded(taskGuid: string): boolean {
    return this.logs.get(taskGuid)?.ended ?? true;
  }

  /** The lines so far and, with follow, the lines that come until the task ends or `signal` aborts. */
  async *read(taskGuid: string, follow: boolean, signal?: AbortSignal): AsyncGenerator<StoredLine> {
    const log = this.logs.get(taskGuid);
    if (!log) return;
    let next = log.first;
    for (;;) {
      if (next < log.first) next = log.first;
      while (next < log.first + log.lines.length) {
        yield log.lines[next - log.first];
        next++;
      }
      if (!follow || log.ended || signal?.aborted || this.logs.get(taskGuid) !== log) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          signal?.removeEventListener("abort", done);
          log.waiters.delete(done);
          resolve();
        };
        log.waiters.add(done);
        signal?.addEventListener("abort", done, { once: true });
      });
    }
  }

  close(): void {
    for (const log of this.logs.values()) {
      clearTimeout(log.timer);
      log.ended = true;
      log.wake();
    }
    this.logs.clear();
    this.total = 0;
  }
}

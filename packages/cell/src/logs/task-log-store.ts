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

  constructor(private readonly options: TaskLogStoreOptions) {
    this.maxLines = options.maxLines ?? 10_000;
    this.maxBytes = options.maxBytes ?? 4 * 1024 * 1024;
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
      old.wake();
    }
    this.logs.set(taskGuid, new TaskLog(logGuid));
  }

  append(taskGuid: string, line: Omit<StoredLine, "timestamp" | "logGuid">): void {
    const log = this.logs.get(taskGuid);
    if (!log || log.ended) return;
    const now = this.options.now?.() ?? BigInt(Date.now()) * 1_000_000n;
    log.lines.push({ ...line, timestamp: now, logGuid: log.logGuid });
    log.bytes += Buffer.byteLength(line.message);
    while (log.lines.length > this.maxLines || (log.bytes > this.maxBytes && log.lines.length > 1)) {
      const dropped = log.lines.shift()!;
      log.bytes -= Buffer.byteLength(dropped.message);
      log.first++;
    }
    log.wake();
  }

  /** The task ended: followers finish, and the lines go after the retention time. */
  end(taskGuid: string): void {
    const log = this.logs.get(taskGuid);
    if (!log || log.ended) return;
    log.ended = true;
    log.wake();
    log.timer = setTimeout(() => {
      if (this.logs.get(taskGuid) === log) this.logs.delete(taskGuid);
    }, this.options.retentionMs);
    log.timer.unref();
  }

  /** Forgets a log that never got a line worth keeping (the task was not claimed here after all). */
  discard(taskGuid: string): void {
    const log = this.logs.get(taskGuid);
    if (!log || log.ended) return;
    this.logs.delete(taskGuid);
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
  }
}

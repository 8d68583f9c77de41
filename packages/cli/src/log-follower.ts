import type { DiegoClient } from "@diego/client";
import type { LogLine } from "@diego/proto";

/**
 * Follows a task's output while `run --logs` waits for it. A task's logs exist once a cell has it, and a
 * stream may break (BBS restart, the cell not ready yet), so it reconnects until one stream ends
 * normally (the task completed); lines seen before a reconnect are not printed twice.
 */
export class LogFollower {
  private running: Promise<void> | undefined;
  private finished = false;
  private readonly stop = new AbortController();
  /** How often each line (by its timestamp, stream, source and text) was printed so far. */
  private readonly printed = new Map<string, number>();

  constructor(
    private readonly client: DiegoClient,
    private readonly taskGuid: string,
    private readonly print: (line: LogLine) => void,
    private readonly retryMs = 500,
  ) {}

  /** Starts following (once); call when the task has a cell. */
  start(): void {
    this.running ??= this.loop();
  }

  /** The task completed: read what is left (bounded by timeoutMs), then stop. */
  async finish(timeoutMs: number): Promise<void> {
    this.finished = true;
    this.start();
    const timer = setTimeout(() => this.stop.abort(), timeoutMs);
    try {
      await this.running;
    } finally {
      clearTimeout(timer);
    }
  }

  abort(): void {
    this.stop.abort();
  }

  private async loop(): Promise<void> {
    while (!this.stop.signal.aborted) {
      const lastChance = this.finished;
      const seenInStream = new Map<string, number>();
      try {
        for await (const line of this.client.logs(this.taskGuid, { follow: true, signal: this.stop.signal })) {
          const key = `${line.timestamp}|${line.stream}|${line.source}|${line.message}`;
          const n = (seenInStream.get(key) ?? 0) + 1;
          seenInStream.set(key, n);
          if (n <= (this.printed.get(key) ?? 0)) continue;
          this.printed.set(key, n);
          this.print(line);
        }
        return;
      } catch {
        if (lastChance || this.stop.signal.aborted) return;
        await new Promise((r) => setTimeout(r, this.retryMs));
      }
    }
  }
}

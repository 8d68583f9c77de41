import { execFile } from "node:child_process";
import type { FileHandle } from "node:fs/promises";
import { LineOffset } from "./output-offsets.js";

/** Consumed bytes are given back to the disk (a hole punched) once this many more are consumed. */
export const PUNCH_EVERY_BYTES = 1024 * 1024;
const READ_BYTES = 64 * 1024;

/**
 * Where an output file is read from. Never a path inside the container resolved by the host: a task
 * can replace its files or their directory by symlinks, which the host would resolve against its own
 * root (docs/reliability.md, "Output files").
 */
export interface OutputSource {
  /**
   * The file, opened through the writing process's own descriptor; "gone" once that process has
   * exited (its file is then read through `rest`); undefined while it cannot be told yet.
   */
  open(): Promise<FileHandle | "gone" | undefined>;
  /** The file's bytes from `offset` on, read by the engine inside the container (once, at the end). */
  rest(offset: number): Promise<Buffer | undefined>;
}

/**
 * Follows one output file a process appends to (docs/reliability.md, "Output files"), delivering what
 * it gains from `from` on, polled every `pollMs`. Bytes before the offset its owner says it has kept
 * (`release`) are punched out of the file (`fallocate --punch-hole`, through the cell's own open
 * descriptor): the file keeps its size and every offset, but the disk holds only output not consumed yet.
 */
export class OutputTail {
  private handle?: FileHandle;
  private readonly offset: LineOffset;
  private timer?: NodeJS.Timeout;
  private reading: Promise<void> = Promise.resolve();
  private stopped = false;
  private released = 0;
  private punched = 0;
  private punching = false;
  /** The writer was gone before the file could be opened, and its rest was read. */
  private restRead = false;

  constructor(
    private readonly source: OutputSource,
    private readonly deliver: (chunk: Buffer) => void,
    from: number,
    private readonly pollMs = 100,
  ) {
    this.offset = new LineOffset(from);
    this.released = from;
  }

  start(): void {
    const tick = () => {
      if (this.stopped) return;
      void this.read().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.pollMs);
      });
    };
    tick();
  }

  /** Where whole lines were delivered up to. */
  get position(): number {
    return this.offset.value;
  }

  /** Output before `offset` is kept elsewhere: the file need not hold it any more. */
  release(offset: number): void {
    this.released = Math.max(this.released, Math.min(offset, this.offset.value));
    if (this.released - this.punched >= PUNCH_EVERY_BYTES) void this.punch();
  }

  /** Reads what is left to the end of the file, then stops. */
  async drain(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.read();
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
  }

  /** Stops without reading further. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    void this.reading.then(() => this.handle?.close().catch(() => undefined));
  }

  private read(): Promise<void> {
    this.reading = this.reading.then(async () => {
      if (!this.handle) {
        if (this.restRead) return;
        const opened = await this.source.open().catch(() => undefined);
        if (opened === "gone") {
          this.restRead = true;
          const rest = await this.source.rest(this.offset.total).catch(() => undefined);
          if (rest?.length) {
            this.offset.advance(rest);
            this.deliver(rest);
          }
          return;
        }
        if (!opened) return;
        this.handle = opened;
      }
      const buffer = Buffer.allocUnsafe(READ_BYTES);
      for (;;) {
        const { bytesRead } = await this.handle
          .read(buffer, 0, READ_BYTES, this.offset.total)
          .catch(() => ({ bytesRead: 0 }));
        if (bytesRead === 0) return;
        const chunk = Buffer.from(buffer.subarray(0, bytesRead));
        this.offset.advance(chunk);
        this.deliver(chunk);
      }
    });
    return this.reading;
  }

  private async punch(): Promise<void> {
    if (this.punching) return;
    this.punching = true;
    try {
      const length = Math.floor(this.released / 4096) * 4096;
      if (!this.handle || length <= this.punched) return;
      // The cell's own descriptor of the file, not a path the task could have redirected.
      const path = `/proc/${process.pid}/fd/${this.handle.fd}`;
      const ok = await new Promise<boolean>((resolve) =>
        execFile("fallocate", ["--punch-hole", "--offset", "0", "--length", String(length), path], (err) =>
          resolve(!err),
        ),
      );
      // Without fallocate (or a file system that cannot punch), the file keeps its bytes: not retried.
      this.punched = ok ? length : Number.POSITIVE_INFINITY;
    } finally {
      this.punching = false;
    }
  }
}

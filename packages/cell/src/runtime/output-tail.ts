import { execFile } from "node:child_process";
import { open, type FileHandle } from "node:fs/promises";
import { LineOffset } from "./output-offsets.js";

/** Consumed bytes are given back to the disk (a hole punched) once this many more are consumed. */
export const PUNCH_EVERY_BYTES = 1024 * 1024;
const READ_BYTES = 64 * 1024;

/**
 * Follows one output file a process appends to (docs/reliability.md, "Output files"), delivering what
 * it gains from `from` on, polled every `pollMs`. Bytes before the offset its owner says it has kept
 * (`release`) are punched out of the file (`fallocate --punch-hole`): the file keeps its size and every
 * offset, but the disk holds only output not consumed yet.
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

  constructor(
    /** The file's path on the host; undefined while it cannot be told. */
    private readonly path: () => Promise<string | undefined>,
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
        const path = await this.path().catch(() => undefined);
        if (!path) return;
        this.handle = await open(path, "r").catch(() => undefined);
        if (!this.handle) return;
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
      const path = await this.path().catch(() => undefined);
      const length = Math.floor(this.released / 4096) * 4096;
      if (!path || length <= this.punched) return;
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

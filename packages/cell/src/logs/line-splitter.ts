import { MAX_LINE_BYTES } from "../runtime/output-offsets.js";

export { MAX_LINE_BYTES };

/** Turns a byte stream into lines (split on \n and \r\n), flushing the remainder at the end. */
export class LineSplitter {
  private pending = Buffer.alloc(0);

  constructor(private readonly emit: (line: string) => void) {}

  write(chunk: Buffer): void {
    let data = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let nl: number;
    while ((nl = data.indexOf(10)) >= 0) {
      let line = data.subarray(0, nl);
      if (line.length && line[line.length - 1] === 13) line = line.subarray(0, line.length - 1);
      this.emitChunks(line);
      data = data.subarray(nl + 1);
    }
    while (data.length >= MAX_LINE_BYTES) {
      this.emit(data.subarray(0, MAX_LINE_BYTES).toString("utf8"));
      data = data.subarray(MAX_LINE_BYTES);
    }
    this.pending = Buffer.from(data);
  }

  end(): void {
    if (this.pending.length) this.emitChunks(this.pending);
    this.pending = Buffer.alloc(0);
  }

  private emitChunks(line: Buffer): void {
    for (let i = 0; i < line.length || i === 0; i += MAX_LINE_BYTES) {
      this.emit(line.subarray(i, i + MAX_LINE_BYTES).toString("utf8"));
      if (line.length === 0) break;
    }
  }
}

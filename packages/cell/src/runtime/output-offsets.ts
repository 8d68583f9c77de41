/**
 * Longest line passed on in one piece; longer ones are cut in chunks of this many bytes (Diego: 61 440).
 * LineSplitter cuts lines so; it is here because output offsets count lines the same way.
 */
export const MAX_LINE_BYTES = 61_440;

/** Bytes of a process's stdout and stderr, from the start of each (docs/reliability.md, "Output files"). */
export interface OutputOffsets {
  stdout: number;
  stderr: number;
}

export const NO_OUTPUT: OutputOffsets = Object.freeze({ stdout: 0, stderr: 0 });

/**
 * How far one stream's output has been delivered in whole lines, as LineSplitter cuts them: up to the
 * last newline, or a full MAX_LINE_BYTES piece of a longer line. A cell that resumes delivering from
 * here gives every line once and whole (a partial line is delivered again, from its start). Pure.
 */
export class LineOffset {
  private delivered: number;
  private lineStart: number;

  constructor(start = 0) {
    this.delivered = start;
    this.lineStart = start;
  }

  advance(chunk: Buffer): void {
    const nl = chunk.lastIndexOf(10);
    if (nl >= 0) this.lineStart = this.delivered + nl + 1;
    this.delivered += chunk.length;
    const pending = this.delivered - this.lineStart;
    if (pending >= MAX_LINE_BYTES) this.lineStart += pending - (pending % MAX_LINE_BYTES);
  }

  /** The offset after the last whole line. */
  get value(): number {
    return this.lineStart;
  }

  /** Every byte delivered. */
  get total(): number {
    return this.delivered;
  }
}

import { LogLine_Stream } from "@diego/proto";

/** The default bytes of output per stream a cell hands to the BBS when a task completes. */
export const DEFAULT_LOG_TAIL_BYTES = 16 * 1024;

/** The most the BBS keeps per stream, whatever a cell sends (the oldest lines beyond it are dropped). */
export const MAX_LOG_TAIL_BYTES = 256 * 1024;

/**
 * The last lines of a task's output within `maxBytes` of message per stream: stdout and stderr each
 * keep their own newest lines, so a chatty stream does not push the other out. Order is kept.
 */
export function logTailOf<L extends { stream: LogLine_Stream | "stdout" | "stderr"; message: string }>(
  lines: readonly L[],
  maxBytes: number,
): L[] {
  const left = new Map<string, number>();
  const keep: boolean[] = new Array<boolean>(lines.length).fill(false);
  for (let i = lines.length - 1; i >= 0; i--) {
    const stream = streamName(lines[i].stream);
    const budget = left.get(stream) ?? maxBytes;
    const size = Buffer.byteLength(lines[i].message);
    if (size > budget) {
      left.set(stream, 0);
      continue;
    }
    left.set(stream, budget - size);
    keep[i] = true;
  }
  return lines.filter((_, i) => keep[i]);
}

function streamName(stream: LogLine_Stream | "stdout" | "stderr"): string {
  return stream === "stderr" || stream === LogLine_Stream.STDERR ? "stderr" : "stdout";
}

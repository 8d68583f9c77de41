import { invalidArgument, parseDuration } from "@diego/models";

/**
 * A flag's duration (`500ms`, `2s`, `1m30s`…) in milliseconds; INVALID_ARGUMENT naming the flag, with
 * `examples` of durations, when the text is not one or is not above zero. Pure.
 */
export function parseDurationOption(flag: string, text: string, examples: string): number {
  try {
    const ms = parseDuration(text);
    if (ms > 0) return ms;
  } catch {
    // reported below
  }
  throw invalidArgument([
    { field: flag, message: `must be a duration such as ${examples} (got ${JSON.stringify(text)})` },
  ]);
}

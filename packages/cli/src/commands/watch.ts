import { DiegoError } from "@diego/models";
import type { CommandContext } from "../context.js";
import { ExitCode } from "../exit-codes.js";
import { eventLine } from "../format/task-view.js";
import { eventJson } from "../format/json-lines.js";

/** `diego watch [--domain D]`: every task event from now on, until Ctrl-C (exit 0) or the BBS ends the stream (exit 3). */
export async function watchCommand(ctx: CommandContext, opts: { domain?: string }): Promise<number> {
  const stop = new AbortController();
  const release = ctx.io.onInterrupt(() => stop.abort());
  try {
    for await (const event of ctx.client().watch({ domain: opts.domain }, { signal: stop.signal })) {
      if (event.event.case === "live" && !ctx.json) continue; // the stream is established; nothing to show
      ctx.out(ctx.json ? eventJson(event) : eventLine(event, ctx.now()));
    }
    if (stop.signal.aborted) return ExitCode.ok;
    // The BBS ended the stream (shutdown, or this watcher fell too far behind): events may be missing from here on.
    ctx.err(`diego: the BBS at ${ctx.address} closed the event stream\n`);
    return ExitCode.unreachable;
  } catch (err) {
    if (stop.signal.aborted && DiegoError.is(err, "CANCELLED")) return 0;
    throw err;
  } finally {
    release();
  }
}

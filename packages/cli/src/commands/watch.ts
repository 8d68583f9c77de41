import { isResync } from "@diego/client";
import { DiegoError } from "@diego/models";
import type { CommandContext } from "../context.js";
import { parseDurationOption } from "../duration-option.js";
import { ExitCode } from "../exit-codes.js";
import { eventLine, listedLine } from "../format/task-view.js";
import { eventJson, taskJson } from "../format/json-lines.js";
import { parseLabelOptions } from "../labels-option.js";

export interface WatchCommandOptions {
  domain?: string;
  label?: string[];
  unreachableTimeout?: string;
}

/**
 * `diego watch [--domain D] [--label k=v…]`: every task event from now on, until Ctrl-C (exit 0).
 * A cut stream is resumed after its last event (a note on stderr); when the BBS no longer has the
 * events to resume from, the tasks are listed again (`LISTED` lines; `{"resync":…}` then
 * `{"listed":…}` with --json). Exit 3 once the BBS stays unreachable past --unreachable-timeout.
 */
export async function watchCommand(ctx: CommandContext, opts: WatchCommandOptions): Promise<number> {
  const labels = parseLabelOptions(opts.label);
  const unreachableTimeoutMs =
    opts.unreachableTimeout === undefined
      ? 60_000
      : parseDurationOption("--unreachable-timeout", opts.unreachableTimeout, "10s or 5m");
  const stop = new AbortController();
  const release = ctx.io.onInterrupt(() => stop.abort());
  try {
    const items = ctx.client().watch(
      { domain: opts.domain, labels },
      {
        signal: stop.signal,
        unreachableTimeoutMs,
        onReconnect: (attempt, err) => {
          if (attempt === 1) ctx.err(`diego: the event stream was cut (${(err as Error).message}); resuming\n`);
        },
      },
    );
    for await (const item of items) {
      if (isResync(item)) {
        ctx.err(`diego: events may be missing (${item.reason}); listing the ${item.tasks.length} tasks again\n`);
        if (ctx.json) ctx.out(JSON.stringify({ resync: { reason: item.reason } }));
        for (const t of item.tasks) ctx.out(ctx.json ? `{"listed":{"task":${taskJson(t)}}}` : listedLine(t, ctx.now()));
        continue;
      }
      if (item.event.case === "live" && !ctx.json) continue; // the stream is established; nothing to show
      ctx.out(ctx.json ? eventJson(item) : eventLine(item, ctx.now()));
    }
    return ExitCode.ok;
  } catch (err) {
    if (stop.signal.aborted && DiegoError.is(err, "CANCELLED")) return ExitCode.ok;
    throw err;
  } finally {
    release();
  }
}

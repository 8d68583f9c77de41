import { DiegoError } from "@diego/models";
import type { CommandContext } from "../context.js";
import { logLineText } from "../format/task-view.js";
import { logLineJson } from "../format/json-lines.js";

/** `diego logs <guid> [--follow]`: the task's output so far and, with --follow, until it completes or Ctrl-C. */
export async function logsCommand(ctx: CommandContext, taskGuid: string, opts: { follow?: boolean }): Promise<number> {
  const stop = new AbortController();
  const release = ctx.io.onInterrupt(() => stop.abort());
  try {
    for await (const line of ctx.client().logs(taskGuid, { follow: opts.follow ?? false, signal: stop.signal })) {
      ctx.out(ctx.json ? logLineJson(line) : logLineText(line));
    }
    return 0;
  } catch (err) {
    if (stop.signal.aborted && DiegoError.is(err, "CANCELLED")) return 0;
    throw err;
  } finally {
    release();
  }
}

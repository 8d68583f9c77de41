import type { CommandContext } from "../context.js";
import { describeError } from "../errors.js";
import { exitCodeFor } from "../exit-codes.js";

const VERBS = {
  cancel: { past: "cancelled", call: (ctx: CommandContext, g: string) => ctx.client().cancel(g) },
  resolve: { past: "resolving", call: (ctx: CommandContext, g: string) => ctx.client().resolve(g) },
  delete: { past: "deleted", call: (ctx: CommandContext, g: string) => ctx.client().delete(g) },
} as const;

/**
 * `diego cancel|resolve|delete <guid...>`: each guid in turn; one that fails does not stop the others,
 * and the exit code is that of the first failure.
 */
export async function lifecycleCommand(
  ctx: CommandContext,
  verb: keyof typeof VERBS,
  taskGuids: string[],
): Promise<number> {
  let exit = 0;
  for (const taskGuid of taskGuids) {
    try {
      await VERBS[verb].call(ctx, taskGuid);
      ctx.out(
        ctx.json
          ? JSON.stringify({ task_guid: taskGuid, status: VERBS[verb].past })
          : `${VERBS[verb].past} task ${taskGuid}`,
      );
    } catch (err) {
      ctx.err(describeError(err, ctx.address, `${verb} ${taskGuid}: `, ctx.tls));
      exit ||= exitCodeFor(err);
    }
  }
  return exit;
}

import type { CommandContext } from "../context.js";
import { taskDetail } from "../format/task-view.js";
import { taskJson } from "../format/json-lines.js";

/** `diego get <guid>` */
export async function getCommand(ctx: CommandContext, taskGuid: string): Promise<number> {
  const task = await ctx.client().get(taskGuid);
  if (ctx.json) ctx.out(taskJson(task));
  else ctx.write(taskDetail(task, ctx.now()));
  return 0;
}

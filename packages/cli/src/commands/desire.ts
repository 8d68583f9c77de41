import type { CommandContext } from "../context.js";
import { stateName } from "../format/task-view.js";
import { taskJson } from "../format/json-lines.js";
import { readTaskFile } from "../task-file-input.js";

/** `diego desire <file.json|->`: submits the task and prints it as stored. */
export async function desireCommand(ctx: CommandContext, file: string): Promise<number> {
  const request = await readTaskFile(ctx, file);
  const task = await ctx.client().desire(request);
  ctx.out(
    ctx.json ? taskJson(task) : `desired task ${task.taskGuid} in domain ${task.domain}: ${stateName(task.state)}`,
  );
  return 0;
}

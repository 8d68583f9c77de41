import { parseTaskState } from "@diego/client";
import type { CommandContext } from "../context.js";
import { taskTable } from "../format/task-view.js";
import { taskJson } from "../format/json-lines.js";
import { parseLabelOptions } from "../labels-option.js";

export interface ListOptions {
  domain?: string;
  cell?: string;
  state?: string;
  label?: string[];
}

/** `diego list [--domain D] [--cell C] [--state S] [--label k=v…]`: every page, oldest first. */
export async function listCommand(ctx: CommandContext, opts: ListOptions): Promise<number> {
  const state = opts.state === undefined ? undefined : parseTaskState(opts.state);
  const labels = parseLabelOptions(opts.label);
  const tasks = await ctx.client().list({ domain: opts.domain, cellId: opts.cell, state, labels });
  tasks.sort((a, b) =>
    a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.taskGuid.localeCompare(b.taskGuid),
  );
  if (ctx.json) for (const t of tasks) ctx.out(taskJson(t));
  else if (tasks.length === 0) ctx.err("no tasks\n");
  else ctx.write(taskTable(tasks, ctx.now()));
  return 0;
}

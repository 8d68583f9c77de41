import type { CommandContext } from "../context.js";
import { cellTable } from "../format/task-view.js";
import { cellJson } from "../format/json-lines.js";

/** `diego cells`: the live cells and their free/total capacity. */
export async function cellsCommand(ctx: CommandContext): Promise<number> {
  const cells = await ctx.client().listCells();
  cells.sort((a, b) => a.cellId.localeCompare(b.cellId));
  if (ctx.json) for (const c of cells) ctx.out(cellJson(c));
  else if (cells.length === 0) ctx.err("no live cells\n");
  else ctx.write(cellTable(cells));
  return 0;
}

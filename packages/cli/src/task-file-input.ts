import { parseTaskFile } from "@diego/client";
import { DiegoError } from "@diego/models";
import type { TaskCreateRequest } from "@diego/proto";
import type { CommandContext } from "./context.js";
import { ContextError } from "./errors.js";

/** Reads and parses a task file (`-` is standard input); errors say which file and which field. */
export async function readTaskFile(ctx: CommandContext, path: string): Promise<TaskCreateRequest> {
  const name = path === "-" ? "standard input" : path;
  let text: string;
  try {
    text = path === "-" ? await ctx.io.readStdin() : await ctx.io.readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory" : (err as Error).message;
    throw new DiegoError("INVALID_ARGUMENT", `cannot read task file ${name}: ${why}`);
  }
  try {
    return parseTaskFile(text);
  } catch (err) {
    throw new ContextError(`task file ${name}: `, err);
  }
}

import { invalidArgument, notFound } from "@diego/models";
import type { HandlerDeps, LockServiceImpl } from "./deps.js";

/** The holder of a lock and its value; NOT_FOUND when nobody holds it. */
export const fetchLock =
  ({ locks }: HandlerDeps): LockServiceImpl["fetchLock"] =>
  async (req) => {
    if (!req.key) throw invalidArgument([{ field: "key", message: "is required" }]);
    const held = await locks.fetch(req.key);
    if (!held) throw notFound(`lock ${JSON.stringify(req.key)}`);
    return held;
  };

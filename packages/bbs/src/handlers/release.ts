import { invalidArgument, type FieldViolation } from "@diego/models";
import type { HandlerDeps, LockServiceImpl } from "./deps.js";

export const release =
  ({ locks }: HandlerDeps): LockServiceImpl["release"] =>
  async (req) => {
    const violations: FieldViolation[] = [];
    if (!req.key) violations.push({ field: "key", message: "is required" });
    if (!req.owner) violations.push({ field: "owner", message: "is required" });
    if (violations.length) throw invalidArgument(violations);
    await locks.release(req.key, req.owner);
    return {};
  };

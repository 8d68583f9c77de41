import { invalidArgument, type FieldViolation } from "@diego/models";
import type { HandlerDeps, LockServiceImpl } from "./deps.js";

/** Takes or refreshes a named lock; FAILED_PRECONDITION while another owner holds it. */
export const lock =
  ({ locks }: HandlerDeps): LockServiceImpl["lock"] =>
  async (req) => {
    const violations: FieldViolation[] = [];
    if (!req.key) violations.push({ field: "key", message: "is required" });
    if (!req.owner) violations.push({ field: "owner", message: "is required" });
    if (req.ttlMs <= 0n) violations.push({ field: "ttl_ms", message: "must be > 0" });
    if (violations.length) throw invalidArgument(violations);
    await locks.lock(req.key, req.owner, req.value, Number(req.ttlMs));
    return {};
  };

import { invalidArgument, LIMITS, nameViolations, sizeViolation, type FieldViolation } from "@diego/models";
import type { HandlerDeps, LockServiceImpl } from "./deps.js";

/** Takes or refreshes a named lock; FAILED_PRECONDITION while another owner holds it. */
export const lock =
  ({ locks }: HandlerDeps): LockServiceImpl["lock"] =>
  async (req) => {
    const violations: FieldViolation[] = [];
    if (!req.key) violations.push({ field: "key", message: "is required" });
    if (!req.owner) violations.push({ field: "owner", message: "is required" });
    const bad = (field: string, message: string) => violations.push({ field, message });
    sizeViolation(req.key, "key", LIMITS.lockKeyBytes, bad);
    nameViolations(req.key, "key", bad);
    sizeViolation(req.owner, "owner", LIMITS.lockOwnerBytes, bad);
    nameViolations(req.owner, "owner", bad);
    sizeViolation(req.value, "value", LIMITS.lockValueBytes, bad);
    if (req.ttlMs <= 0n) bad("ttl_ms", "must be > 0");
    else if (req.ttlMs > BigInt(LIMITS.ttlMs)) bad("ttl_ms", `must be at most ${LIMITS.ttlMs}`);
    if (violations.length) throw invalidArgument(violations);
    await locks.lock(req.key, req.owner, req.value, Number(req.ttlMs));
    return {};
  };

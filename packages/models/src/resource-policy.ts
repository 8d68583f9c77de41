import type { FieldViolation } from "./errors.js";

/**
 * What an operator lets one task take (docs/limits.md): a default for `memory_mb` and `disk_mb` given
 * as 0, and a maximum for each. 0 in the policy means none (0 stays 0: the cell's whole share, nothing
 * reserved) and no maximum beyond LIMITS.
 */
export interface ResourcePolicy {
  defaultMemoryMb: number;
  maxMemoryMb: number;
  defaultDiskMb: number;
  maxDiskMb: number;
}

export const NO_RESOURCE_POLICY: ResourcePolicy = {
  defaultMemoryMb: 0,
  maxMemoryMb: 0,
  defaultDiskMb: 0,
  maxDiskMb: 0,
};

/** The task's memory_mb and disk_mb under the policy: 0 becomes the default; over the maximum is a violation. */
export function applyResourcePolicy(
  task: { memoryMb: number; diskMb: number },
  policy: ResourcePolicy,
): { memoryMb: number; diskMb: number; violations: FieldViolation[] } {
  const violations: FieldViolation[] = [];
  const one = (value: number, fallback: number, max: number, field: string, flag: string) => {
    const v = value || fallback;
    if (max && v > max)
      violations.push({ field, message: `must be at most ${max} on this cluster (${flag}); got ${v}` });
    return v;
  };
  return {
    memoryMb: one(task.memoryMb, policy.defaultMemoryMb, policy.maxMemoryMb, "memory_mb", "--max-memory-mb"),
    diskMb: one(task.diskMb, policy.defaultDiskMb, policy.maxDiskMb, "disk_mb", "--max-disk-mb"),
    violations,
  };
}

import { formatDuration } from "./duration.js";

/** The fixed failure texts of docs/contract.md (failure reasons); clients match them, so never reword them. */
export const FailureReason = {
  cancelled: "task was cancelled",
  notStartedWithinTimeLimit: "not started within time limit",
  cellDisappeared: "cell disappeared before completion",
  noCompatibleRootfs: "found no compatible cell for required rootfs",
  failedToFetchResult: "failed to fetch result",
  unableToCommunicate: "unable to communicate to compatible cells",
  containerMissing: "task container does not exist",
  noPrivilegedCell: "found no compatible cell that allows privileged tasks",
} as const;

export function exitedWithStatus(logSource: string, status: number, outOfMemory: boolean): string {
  return `${logSource}: Exited with status ${status}${outOfMemory ? " (out of memory)" : ""}`;
}

export function timeoutExceeded(timeoutMs: number): string {
  return `exceeded ${formatDuration(timeoutMs)} timeout`;
}

export function failedToFetchImage(ref: string, reason: string): string {
  return `failed to fetch image ${ref}: ${reason}`;
}

/** `found no compatible cell with placement tag "x"` / `… tags "a", "b" and "c"` / `… with no placement tags`. */
export function noCompatiblePlacementTags(tags: readonly string[]): string {
  if (tags.length === 0) return "found no compatible cell with no placement tags";
  const quoted = tags.map((t) => JSON.stringify(t));
  if (quoted.length === 1) return `found no compatible cell with placement tag ${quoted[0]}`;
  const list = `${quoted.slice(0, -1).join(", ")} and ${quoted[quoted.length - 1]}`;
  return `found no compatible cell with placement tags ${list}`;
}

export type ScarceResource = "containers" | "disk" | "memory";

/** `insufficient resources: disk, memory` (sorted); just `insufficient resources` when none is named. */
export function insufficientResources(resources: Iterable<ScarceResource>): string {
  const names = [...new Set(resources)].sort();
  return names.length ? `insufficient resources: ${names.join(", ")}` : "insufficient resources";
}

const MAX_REASON_BYTES = 1024;
const TRUNCATED = "(truncated)";

/** Reasons are kept to 1024 bytes; longer ones are cut and end with `(truncated)`. */
export function truncateReason(reason: string): string {
  const bytes = Buffer.from(reason, "utf8");
  if (bytes.length < MAX_REASON_BYTES) return reason;
  const keep = bytes
    .subarray(0, MAX_REASON_BYTES - TRUNCATED.length)
    .toString("utf8")
    .replace(/\uFFFD$/, "");
  return keep + TRUNCATED;
}

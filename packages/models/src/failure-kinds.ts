import { FailureKind } from "@diego/proto";
import { FailureReason } from "./failure-reasons.js";

/**
 * Every failure text of docs/outcomes.md to its one FailureKind. Rows are tried in order; the first
 * whose pattern matches the start of the reason decides (an aggregate `a; b` is decided by `a`, as
 * the cell reports its first failure first). A text no row names came from a step of the action
 * tree (download, upload, codependent), so the last row is ACTION_FAILED.
 */
export const FAILURE_KINDS: ReadonlyArray<{ pattern: RegExp; kind: FailureKind; text: string }> = [
  {
    pattern: /^[^;]*: Exited with status -?\d+ \(out of memory\)/,
    kind: FailureKind.OUT_OF_MEMORY,
    text: "<source>: Exited with status <n> (out of memory)",
  },
  { pattern: /^[^;]*: Exited with status -?\d+/, kind: FailureKind.EXITED, text: "<source>: Exited with status <n>" },
  { pattern: /^exceeded \S+ timeout/, kind: FailureKind.TIMED_OUT, text: "exceeded <duration> timeout" },
  { pattern: exactly(FailureReason.cancelled), kind: FailureKind.CANCELLED, text: FailureReason.cancelled },
  {
    pattern: exactly(FailureReason.notStartedWithinTimeLimit),
    kind: FailureKind.EXPIRED,
    text: FailureReason.notStartedWithinTimeLimit,
  },
  { pattern: exactly(FailureReason.cellDisappeared), kind: FailureKind.CELL_LOST, text: FailureReason.cellDisappeared },
  { pattern: /^found no compatible cell /, kind: FailureKind.NOT_PLACEABLE, text: "found no compatible cell ..." },
  { pattern: /^insufficient resources/, kind: FailureKind.NOT_PLACEABLE, text: "insufficient resources: <resources>" },
  {
    pattern: /^unable to communicate to compatible cells/,
    kind: FailureKind.NOT_PLACEABLE,
    text: FailureReason.unableToCommunicate,
  },
  {
    pattern: /^failed to fetch image /,
    kind: FailureKind.IMAGE_UNAVAILABLE,
    text: "failed to fetch image <ref>: <reason>",
  },
  {
    pattern: exactly(FailureReason.failedToFetchResult),
    kind: FailureKind.RESULT_UNREADABLE,
    text: FailureReason.failedToFetchResult,
  },
  {
    pattern: exactly(FailureReason.containerMissing),
    kind: FailureKind.CONTAINER_LOST,
    text: FailureReason.containerMissing,
  },
  {
    pattern: /^failed to create container/,
    kind: FailureKind.SETUP_FAILED,
    text: "failed to create container: <reason>",
  },
  {
    pattern: /^cell stopped before the task started/,
    kind: FailureKind.SETUP_FAILED,
    text: "cell stopped before the task started",
  },
  {
    pattern: /(?:)/,
    kind: FailureKind.ACTION_FAILED,
    text: "any other step's failure (download, upload, codependent)",
  },
];

/** The kind of a failure text; FAILURE_KIND_UNSPECIFIED for the empty text (not failed). */
export function failureKindOf(reason: string): FailureKind {
  if (!reason) return FailureKind.FAILURE_KIND_UNSPECIFIED;
  return FAILURE_KINDS.find((row) => row.pattern.test(reason))!.kind;
}

/** The kind given by whoever failed the task, else the one its text maps to. */
export function resolveFailureKind(failed: boolean, reason: string, given?: FailureKind): FailureKind {
  if (!failed) return FailureKind.FAILURE_KIND_UNSPECIFIED;
  return given || failureKindOf(reason) || FailureKind.ACTION_FAILED;
}

export function failureKindName(kind: FailureKind): string {
  return FailureKind[kind] ?? String(kind);
}

function exactly(text: string): RegExp {
  return new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
}

import { FailureKind } from "@diego/proto";
import { FAILURE_KINDS, failureKindOf, resolveFailureKind } from "../src/failure-kinds.js";
import {
  exitedWithStatus,
  failedToFetchImage,
  FailureReason,
  insufficientResources,
  noCompatiblePlacementTags,
  timeoutExceeded,
} from "../src/failure-reasons.js";

const { EXITED, OUT_OF_MEMORY, TIMED_OUT, CANCELLED, CELL_LOST, NOT_PLACEABLE, IMAGE_UNAVAILABLE } = FailureKind;
const { RESULT_UNREADABLE, SETUP_FAILED, EXPIRED, ACTION_FAILED, CONTAINER_LOST } = FailureKind;

test.each<[string, FailureKind]>([
  [exitedWithStatus("DEMO", 3, false), EXITED],
  [exitedWithStatus("web: app", 137, true), OUT_OF_MEMORY],
  [exitedWithStatus("LOG", -1, false), EXITED],
  [timeoutExceeded(500), TIMED_OUT],
  [timeoutExceeded(90_000), TIMED_OUT],
  [`${timeoutExceeded(1000)}; LOG: Exited with status 143`, TIMED_OUT],
  [FailureReason.cancelled, CANCELLED],
  [FailureReason.notStartedWithinTimeLimit, EXPIRED],
  [FailureReason.cellDisappeared, CELL_LOST],
  [FailureReason.noCompatibleRootfs, NOT_PLACEABLE],
  [noCompatiblePlacementTags(["x"]), NOT_PLACEABLE],
  [noCompatiblePlacementTags(["a", "b", "c"]), NOT_PLACEABLE],
  [noCompatiblePlacementTags([]), NOT_PLACEABLE],
  [insufficientResources(["memory", "disk"]), NOT_PLACEABLE],
  [insufficientResources([]), NOT_PLACEABLE],
  [FailureReason.unableToCommunicate, NOT_PLACEABLE],
  [failedToFetchImage("docker:///nope", "manifest unknown"), IMAGE_UNAVAILABLE],
  [FailureReason.failedToFetchResult, RESULT_UNREADABLE],
  [FailureReason.containerMissing, CONTAINER_LOST],
  ["failed to create container: no space left", SETUP_FAILED],
  ["cell stopped before the task started", SETUP_FAILED],
  ["Downloading app failed", ACTION_FAILED],
  ["Failed to upload payload for droplet", ACTION_FAILED],
  ["Codependent step exited", ACTION_FAILED],
  [`a: Exited with status 1; ${timeoutExceeded(1000)}`, EXITED],
])("%s → %s", (text, kind) => {
  expect(FailureKind[failureKindOf(text)]).toBe(FailureKind[kind]);
});

test("every fixed text maps to exactly one kind, and every kind but the unset one has a text", () => {
  for (const text of Object.values(FailureReason)) expect(failureKindOf(text)).not.toBe(ACTION_FAILED);
  const kinds = new Set(FAILURE_KINDS.map((r) => r.kind));
  for (const k of Object.values(FailureKind).filter((v): v is FailureKind => typeof v === "number")) {
    if (k !== FailureKind.FAILURE_KIND_UNSPECIFIED)
      expect([FailureKind[k], kinds.has(k)]).toEqual([FailureKind[k], true]);
  }
});

test("the kind given by the failing side wins; none when the task succeeded", () => {
  expect(resolveFailureKind(true, "anything", SETUP_FAILED)).toBe(SETUP_FAILED);
  expect(resolveFailureKind(true, FailureReason.cancelled)).toBe(CANCELLED);
  expect(resolveFailureKind(true, "")).toBe(ACTION_FAILED);
  expect(resolveFailureKind(false, "x", EXITED)).toBe(FailureKind.FAILURE_KIND_UNSPECIFIED);
});

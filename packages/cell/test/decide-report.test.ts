// What a runner reports once its task's work has ended, by why it was stopped and what the work gave
// (docs/outcomes.md): decide-report.ts, pure.
import { FailureReason } from "@diego/models";
import { FailureKind } from "@diego/proto";
import { decideReport, type Outcome, type Produced, type StopReason } from "../src/executor/decide-report.js";

const succeeded: Produced = { kind: "complete", failed: false, reason: "", result: "42", exitStatus: 0 };
const exited3: Produced = {
  kind: "complete",
  failed: true,
  reason: "APP: Exited with status 3",
  result: "",
  exitStatus: 3,
};
const cellLost: Produced = {
  kind: "complete",
  failed: true,
  reason: "cell restarted while starting a process of the task",
  result: "",
  failureKind: FailureKind.CELL_LOST,
};
const rejected: Produced = { kind: "reject", reason: "failed to create container: boom" };
const nothing: Produced = { kind: "none" };
const threw: Produced = { kind: "error", message: "engine said no" };

const missing: Outcome = { kind: "complete", failed: true, reason: FailureReason.containerMissing, result: "" };
const disappeared: Outcome = { kind: "complete", failed: true, reason: FailureReason.cellDisappeared, result: "" };

const rows: Array<[StopReason | undefined, string, Produced, Outcome]> = [
  [undefined, "succeeded", succeeded, succeeded as Outcome],
  [undefined, "exited 3", exited3, exited3 as Outcome],
  [undefined, "cell lost", cellLost, cellLost as Outcome],
  [undefined, "rejected", rejected, rejected as Outcome],
  [undefined, "nothing", nothing, { kind: "none" }],
  [undefined, "threw", threw, { kind: "complete", failed: true, reason: "engine said no", result: "" }],
  ["cancelled", "succeeded", succeeded, { kind: "none" }],
  ["cancelled", "rejected", rejected, { kind: "none" }],
  ["cancelled", "threw", threw, { kind: "none" }],
  ["gone", "exited 3", exited3, { kind: "none" }],
  ["gone", "nothing", nothing, { kind: "none" }],
  ["missing", "succeeded", succeeded, missing],
  ["missing", "rejected", rejected, missing],
  ["missing", "nothing", nothing, missing],
  ["missing", "threw", threw, missing],
  ["drain", "succeeded", succeeded, disappeared],
  ["drain", "exited 3", exited3, disappeared],
  ["drain", "threw", threw, disappeared],
  ["drain", "rejected", rejected, rejected as Outcome],
  ["drain", "nothing", nothing, { kind: "none" }],
];

test.each(rows)("stopped %s, the work %s", (stop, _, produced, expected) => {
  expect(decideReport(stop, produced)).toEqual(expected);
});

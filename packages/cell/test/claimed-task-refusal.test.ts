import { create } from "@bufbuild/protobuf";
import { taskWork, type AdmitCell } from "@diego/models";
import { cellv1, TaskSchema } from "@diego/proto";
import { claimedTaskRefusal } from "../src/executor/claimed-task-refusal.js";

const offer: AdmitCell = {
  rootfsProviders: [{ scheme: "docker", names: [] }],
  stacks: [],
  placementTags: [],
  optionalPlacementTags: ["gpu"],
  allowPrivileged: false,
};
const base = { taskGuid: "t", domain: "d", rootFs: "docker:///diego/busybox", memoryMb: 64, diskMb: 64 };
const reserved = create(cellv1.TaskWorkSchema, taskWork(create(TaskSchema, base)));

test.each([
  ["the task Perform described", {}, undefined],
  [
    "privileged on a cell that does not allow it",
    { privileged: true },
    "found no compatible cell that allows privileged tasks",
  ],
  ["a placement tag the cell lacks", { placementTags: ["fast"] }, 'found no compatible cell with placement tag "fast"'],
  ["an optional tag the cell has", { placementTags: ["gpu"] }, undefined],
  ["more memory than reserved", { memoryMb: 65 }, /more than this cell reserved/],
  ["less disk than reserved", { diskMb: 1 }, undefined],
])("%s", (_, over, refusal) => {
  const got = claimedTaskRefusal(reserved, create(TaskSchema, { ...base, ...over }), offer);
  if (refusal instanceof RegExp) expect(got).toMatch(refusal);
  else expect(got).toBe(refusal);
});

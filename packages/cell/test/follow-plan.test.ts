// The pure decisions of following a task across a restart of the cell (src/executor/follow-plan.ts) and
// of reporting its outcome (afterAttempt), one row each.
import { create } from "@bufbuild/protobuf";
import { DiegoError } from "@diego/models";
import { ActionSchema, type Action } from "@diego/proto";
import {
  cursorAtLeaf,
  nodeAt,
  pathsOf,
  recoveryOf,
  replayRole,
  RESTARTED_STARTING_PROCESS,
} from "../src/executor/follow-plan.js";
import type { Cursor } from "../src/executor/outcome-record.js";
import { afterAttempt } from "../src/executor/outcome-reporter.js";

const run = (): Action => create(ActionSchema, { action: { case: "run", value: { path: "/bin/true" } } });
const download = (): Action =>
  create(ActionSchema, { action: { case: "download", value: { from: "http://x/a", to: "/a" } } });
const serial = (...actions: Action[]): Action =>
  create(ActionSchema, { action: { case: "serial", value: { actions } } });
const parallel = (...actions: Action[]): Action =>
  create(ActionSchema, { action: { case: "parallel", value: { actions } } });
const codependent = (...actions: Action[]): Action =>
  create(ActionSchema, { action: { case: "codependent", value: { actions } } });
const tryA = (action: Action): Action => create(ActionSchema, { action: { case: "try", value: { action } } });
const timeout = (action: Action): Action =>
  create(ActionSchema, { action: { case: "timeout", value: { action, timeoutMs: 1000n } } });
const progress = (action: Action): Action =>
  create(ActionSchema, { action: { case: "emitProgress", value: { action, startMessage: "s" } } });

const cursorRows: Array<[string, Action, number[], Cursor]> = [
  ["a lone run", run(), [], { at: "starting-process", path: [] }],
  ["a run in a serial, not last", serial(run(), run()), [0], { at: "starting-process", path: [0] }],
  ["a run in a serial, last", serial(download(), run()), [1], { at: "starting-process", path: [1] }],
  ["a run under try", tryA(run()), [0], { at: "starting-process", path: [0] }],
  ["a run under emit_progress", progress(serial(run())), [0, 0], { at: "starting-process", path: [0, 0] }],
  ["a download", serial(download(), run()), [0], { at: "unresumable", why: "ran a download action" }],
  [
    "a run under parallel",
    parallel(run()),
    [0],
    { at: "unresumable", why: "ran a run action inside a parallel action" },
  ],
  [
    "a run under codependent",
    serial(codependent(run(), run())),
    [0, 1],
    { at: "unresumable", why: "ran a run action inside a codependent action" },
  ],
  ["a run under timeout", timeout(run()), [0], { at: "unresumable", why: "ran a run action inside a timeout action" }],
  ["a path off the tree", serial(run()), [3], { at: "unresumable", why: "was at a step missing from its action tree" }],
];

test.each(cursorRows)("cursor at the leaf: %s", (_, tree, path, cursor) => {
  expect(cursorAtLeaf(tree, path)).toEqual(cursor);
});

const roleRows: Array<[number[], number[] | undefined, ReturnType<typeof replayRole>, string]> = [
  [[], [1, 0], "ancestor", "the root is on the way to the process"],
  [[1], [1, 0], "ancestor", "so is the serial holding it"],
  [[1, 0], [1, 0], "target", "the process itself"],
  [[0], [1, 0], "done", "a serial step before it finished (and succeeded) before it began"],
  [[1, 0, 2], [1, 0], "ahead", "below the process: nothing (a run has no children)"],
  [[1, 1], [1, 0], "ahead", "a serial step after it: runs as usual"],
  [[2], [1, 0], "ahead", "a later step of the root serial"],
  [[0], undefined, "ahead", "no process recorded: the whole tree runs"],
];

test.each(roleRows)("replay role of %j with the process at %j → %s (%s)", (node, target, role) => {
  expect(replayRole(node, target)).toBe(role);
});

const recoveryRows: Array<[Cursor, boolean, ReturnType<typeof recoveryOf>]> = [
  [{ at: "setup" }, true, { kind: "follow" }],
  [{ at: "process", path: [1], processId: "e1" }, true, { kind: "follow", target: { path: [1], processId: "e1" } }],
  [
    { at: "process", path: [1], processId: "e1", output: { stdout: 12, stderr: 3 } },
    true,
    { kind: "follow", target: { path: [1], processId: "e1", output: { stdout: 12, stderr: 3 } } },
  ],
  [
    { at: "starting-process", path: [0] },
    true,
    { kind: "fail", reason: RESTARTED_STARTING_PROCESS, containerLost: false },
  ],
  [
    { at: "unresumable", why: "ran a download action" },
    true,
    { kind: "fail", reason: "cell restarted while the task ran a download action", containerLost: false },
  ],
  [{ at: "process", path: [], processId: "e1" }, false, { kind: "fail", reason: "", containerLost: true }],
  [{ at: "setup" }, false, { kind: "fail", reason: "", containerLost: true }],
];

test.each(recoveryRows)("recovery of %j (container exists: %s)", (cursor, exists, recovery) => {
  expect(recoveryOf(cursor, exists)).toEqual(recovery);
});

test("paths name every node and lead back to it", () => {
  const tree = serial(download(), progress(tryA(run())), parallel(run(), run()));
  const paths = pathsOf(tree);
  expect(paths.size).toBe(8);
  for (const [node, path] of paths) expect(nodeAt(tree, path)).toBe(node);
});

const answerRows: Array<[string, unknown, ReturnType<typeof afterAttempt>]> = [
  ["the BBS took it", undefined, "accepted"],
  ["the task is gone", new DiegoError("NOT_FOUND", "task not found"), "refused"],
  ["not on this cell, or already completed", new DiegoError("FAILED_PRECONDITION", "invalid transition"), "refused"],
  ["the BBS is down", new DiegoError("UNAVAILABLE", "connection refused"), "retry"],
  ["the call ran out of time", new DiegoError("DEADLINE_EXCEEDED", "deadline"), "retry"],
  ["etcd is busy", new DiegoError("RESOURCE_EXHAUSTED", "too many requests"), "retry"],
  ["a socket error", new Error("ECONNRESET"), "retry"],
];

test.each(answerRows)("after a report attempt: %s → %s", (_, err, verdict) => {
  expect(afterAttempt(err)).toBe(verdict);
});

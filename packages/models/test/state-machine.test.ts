import { create } from "@bufbuild/protobuf";
import { FailureKind, TaskCreateRequestSchema, TaskState, type Task } from "@diego/proto";
import { DiegoError } from "../src/errors.js";
import {
  TRANSITIONS,
  transition,
  type Actor,
  type StateOrAbsent,
  type TransitionArgs,
  type TransitionName,
} from "../src/state-machine.js";

const NOW = 1_700_000_000_000_000_000n;
const LATER = NOW + 5_000_000_000n;
const CELL = "cell-1";

const request = create(TaskCreateRequestSchema, {
  taskGuid: "t1",
  domain: "d",
  rootFs: "docker:///diego/busybox",
  action: { action: { case: "run", value: { path: "/bin/true" } } },
});

function taskIn(state: StateOrAbsent) {
  if (state === "absent") return undefined;
  const out = transition("desire", "client", undefined, { request }, NOW);
  if (out.kind !== "put") throw new Error("desire did not put");
  return { ...out.task, state, cellId: state === TaskState.PENDING ? "" : CELL };
}

const ARGS: { [N in TransitionName]: TransitionArgs[N] } = {
  desire: { request },
  start: { cellId: CELL },
  running: { cellId: CELL },
  complete: { cellId: CELL, failed: false, failureReason: "", result: "42" },
  reject: { reason: "no room", cellId: CELL, maxRetries: 3 },
  fail: { reason: "broken" },
  cancel: {},
  expire: {},
  cellLost: {},
  resolve: {},
  demote: {},
  delete: {},
  expireCompleted: {},
};

const STATES: StateOrAbsent[] = [
  "absent",
  TaskState.PENDING,
  TaskState.CLAIMED,
  TaskState.RUNNING,
  TaskState.COMPLETED,
  TaskState.RESOLVING,
];
const NAMES = Object.keys(TRANSITIONS) as TransitionName[];

describe("every (state × transition) pair", () => {
  for (const name of NAMES) {
    const rule = TRANSITIONS[name];
    const actor: Actor = rule.by[0];
    for (const state of STATES) {
      const allowed = rule.from.includes(state);
      const repeat = state !== "absent" && !!rule.repeat?.from.includes(state);
      test(`${name} from ${String(state === "absent" ? "absent" : TaskState[state])}: ${allowed ? "allowed" : repeat ? "idempotent" : "refused"}`, () => {
        const run = () => transition(name, actor, taskIn(state), ARGS[name] as never, LATER);
        if (repeat) {
          expect(run().kind).toBe("unchanged");
        } else if (!allowed) {
          expect(run).toThrow(DiegoError);
          const code = (() => {
            try {
              run();
            } catch (err) {
              return (err as DiegoError).code;
            }
          })();
          expect(code).toBe(
            state === "absent" ? "NOT_FOUND" : name === "desire" ? "ALREADY_EXISTS" : "FAILED_PRECONDITION",
          );
        } else {
          const out = run();
          if (rule.to === "absent") expect(out.kind).toBe("delete");
          else {
            expect(out.kind).toBe("put");
            if (out.kind === "put") {
              expect(out.task.state).toBe(rule.to);
              expect(out.task.updatedAt).toBe(LATER);
            }
          }
        }
      });
    }
  }
});

describe("who may call", () => {
  test("a client may not complete a task", () => {
    expect(() => transition("complete", "client", taskIn(TaskState.RUNNING), ARGS.complete, LATER)).toThrow(
      /may not complete/,
    );
  });

  const ACTORS: Actor[] = ["client", "cell", "auctioneer", "converger", "bbs"];
  // Every actor outside a row's `by` is refused with PERMISSION_DENIED, whatever the task's state.
  for (const name of NAMES) {
    for (const actor of ACTORS.filter((a) => !TRANSITIONS[name].by.includes(a))) {
      test(`${actor} may not ${name}`, () => {
        const from = TRANSITIONS[name].from[0];
        expect(() => transition(name, actor, taskIn(from), ARGS[name] as never, LATER)).toThrow(
          expect.objectContaining({ code: "PERMISSION_DENIED" }),
        );
      });
    }
  }
});

describe("idempotent repeats are rows of the table", () => {
  test.each([
    ["start", [TaskState.CLAIMED, TaskState.RUNNING]],
    ["running", [TaskState.RUNNING]],
  ] as const)("%s repeats from %j on the same cell only", (name, states) => {
    expect(TRANSITIONS[name].repeat?.from).toEqual(states);
    for (const state of states) {
      expect(transition(name, "cell", taskIn(state), { cellId: CELL }, LATER).kind).toBe("unchanged");
      expect(() => transition(name, "cell", taskIn(state), { cellId: "other" }, LATER)).toThrow(DiegoError);
    }
  });
});

describe("fields set", () => {
  test("desire stores PENDING with created_at and updated_at", () => {
    const out = transition("desire", "client", undefined, { request }, NOW);
    expect(out).toMatchObject({
      kind: "put",
      task: { state: TaskState.PENDING, createdAt: NOW, updatedAt: NOW, firstCompletedAt: 0n },
    });
  });

  test("complete keeps the cell and records the result", () => {
    const out = transition("complete", "cell", taskIn(TaskState.RUNNING), ARGS.complete, LATER);
    expect(out).toMatchObject({
      task: { state: TaskState.COMPLETED, cellId: CELL, failed: false, result: "42", firstCompletedAt: LATER },
    });
  });

  test("complete from another cell is refused", () => {
    expect(() =>
      transition("complete", "cell", taskIn(TaskState.RUNNING), { ...ARGS.complete, cellId: "cell-2" }, LATER),
    ).toThrow(/on cell cell-1, not cell-2/);
  });

  test("start again from another cell is refused", () => {
    expect(() => transition("start", "cell", taskIn(TaskState.CLAIMED), { cellId: "cell-2" }, LATER)).toThrow(
      "Cannot transition from CLAIMED to CLAIMED",
    );
  });

  test("cancel fails the task with the fixed reason", () => {
    const out = transition("cancel", "client", taskIn(TaskState.RUNNING), {}, LATER);
    expect(out).toMatchObject({
      task: { state: TaskState.COMPLETED, failed: true, failureReason: "task was cancelled", result: "" },
    });
  });

  test("reject counts and returns to PENDING, then fails after max retries", () => {
    const reject = (t: Task) =>
      transition(
        "reject",
        "auctioneer",
        t,
        { reason: "insufficient resources: memory", cellId: "", maxRetries: 3 },
        LATER,
      );
    let task = taskIn(TaskState.PENDING)!;
    for (let i = 1; i <= 3; i++) {
      const out = reject(task);
      if (out.kind !== "put") throw new Error("expected put");
      expect(out.task).toMatchObject({
        state: TaskState.PENDING,
        rejectionCount: i,
        rejectionReason: "insufficient resources: memory",
      });
      task = out.task;
    }
    const last = reject(task);
    expect(last).toMatchObject({
      task: { state: TaskState.COMPLETED, failed: true, failureReason: "insufficient resources: memory" },
    });
  });

  test("a permanent rejection fails the task at once, with the rejection's text", () => {
    const out = transition(
      "reject",
      "auctioneer",
      taskIn(TaskState.PENDING),
      { reason: "found no compatible cell", cellId: "", maxRetries: 3, permanent: true },
      LATER,
    );
    expect(out).toMatchObject({
      task: {
        state: TaskState.COMPLETED,
        failed: true,
        failureReason: "found no compatible cell",
        rejectionCount: 1,
        rejectionReason: "found no compatible cell",
      },
    });
  });

  test("demote keeps first_completed_at", () => {
    const done = transition("complete", "cell", taskIn(TaskState.RUNNING), ARGS.complete, NOW);
    if (done.kind !== "put") throw new Error("expected put");
    const resolving = transition("resolve", "client", done.task, {}, NOW);
    if (resolving.kind !== "put") throw new Error("expected put");
    const demoted = transition("demote", "converger", resolving.task, {}, LATER);
    expect(demoted).toMatchObject({ task: { state: TaskState.COMPLETED, firstCompletedAt: NOW, updatedAt: LATER } });
  });
});

describe("outcome", () => {
  const put = (o: ReturnType<typeof transition>) => {
    if (o.kind !== "put") throw new Error(`expected put, got ${o.kind}`);
    return o.task;
  };
  const at = (n: number) => NOW + BigInt(n) * 1_000_000_000n;

  test("claimed_at, started_at and completed_at are set by their transitions, in order", () => {
    const pending = put(transition("desire", "client", undefined, { request }, at(0)));
    const claimed = put(transition("start", "cell", pending, { cellId: CELL }, at(1)));
    const running = put(transition("running", "cell", claimed, { cellId: CELL }, at(2)));
    const done = put(
      transition(
        "complete",
        "cell",
        running,
        {
          cellId: CELL,
          failed: true,
          failureReason: "DEMO: Exited with status 3",
          result: "",
          exitStatus: 3,
          usage: { $typeName: "diego.bbs.v1.TaskUsage", peakMemoryBytes: 1024n, cpuTimeNs: 5n },
        },
        at(3),
      ),
    );
    expect([done.createdAt, done.claimedAt, done.startedAt, done.completedAt]).toEqual([at(0), at(1), at(2), at(3)]);
    expect(done.exitStatus).toBe(3);
    expect(FailureKind[done.failureKind]).toBe("EXITED");
    expect(done.usage?.peakMemoryBytes).toBe(1024n);
  });

  test.each<[TransitionName, StateOrAbsent, string]>([
    ["cancel", TaskState.RUNNING, "CANCELLED"],
    ["expire", TaskState.PENDING, "EXPIRED"],
    ["cellLost", TaskState.RUNNING, "CELL_LOST"],
  ])("the BBS's own failure %s has its kind and no exit status", (name, from, kind) => {
    const done = put(transition(name, TRANSITIONS[name].by[0], taskIn(from), ARGS[name] as never, LATER));
    expect(FailureKind[done.failureKind]).toBe(kind);
    expect(done.exitStatus).toBeUndefined();
    expect(done.completedAt).toBe(LATER);
  });

  test("rejected out of retries: NOT_PLACEABLE from the text; a success has no kind", () => {
    const t = { ...taskIn(TaskState.PENDING)!, rejectionCount: 3 };
    const done = put(
      transition("reject", "auctioneer", t, { ...ARGS.reject, reason: "insufficient resources: memory" }, LATER),
    );
    expect(FailureKind[done.failureKind]).toBe("NOT_PLACEABLE");
    const ok = put(transition("complete", "cell", taskIn(TaskState.RUNNING), ARGS.complete, LATER));
    expect(ok.failureKind).toBe(FailureKind.FAILURE_KIND_UNSPECIFIED);
  });
});

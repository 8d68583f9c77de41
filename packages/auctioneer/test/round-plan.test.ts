import { create } from "@bufbuild/protobuf";
import type { PlacementFailure, ScheduleResult } from "@diego/auction";
import { cellv1 } from "@diego/proto";
import { planRound, type HeldTask, type PerformAnswer, type RoundInput, type TaskWork } from "../src/index.js";

const work = (taskGuid: string): TaskWork => create(cellv1.TaskWorkSchema, { taskGuid, rootFs: "docker:///x/y" });
const failure = (
  guid: string,
  cause: PlacementFailure["cause"],
  permanent: boolean,
  reason = "insufficient resources: memory",
): PlacementFailure<TaskWork> => ({ task: work(guid), cause, permanent, reason });

const NOW = 10_000;
const BACKOFF = { initialMs: 100, maxMs: 800 };

function plan(
  schedule: Partial<ScheduleResult<TaskWork>>,
  answers: Record<string, PerformAnswer> = {},
  held: Record<string, HeldTask> = {},
  random = 1 - Number.EPSILON,
) {
  const input: RoundInput = {
    schedule: { placements: [], failures: [], ...schedule },
    held: new Map(Object.entries(held)),
    answers: new Map(Object.entries(answers)),
    maxCellRefusals: 3,
    backoff: BACKOFF,
    nowMs: NOW,
    random: () => random,
  };
  return planRound(input);
}

const refusal = (cellId: string, reason = "no room") => ({ cellId, reason });

describe("planRound", () => {
  test.each([
    {
      name: "accepted work is placed, nothing is refreshed",
      schedule: { placements: [{ cellId: "c1", tasks: [work("a"), work("b")] }] },
      answers: { c1: { refused: [] } },
      held: {},
      want: { placed: [["c1", ["a", "b"]]], reject: [], keep: [], refresh: [], next: Infinity },
    },
    {
      name: "a refusal keeps the task for at once elsewhere and refreshes the cell",
      schedule: { placements: [{ cellId: "c1", tasks: [work("a"), work("b")] }] },
      answers: { c1: { refused: [{ taskGuid: "b", reason: "insufficient resources available" }] } },
      held: {},
      want: {
        placed: [["c1", ["a"]]],
        reject: [],
        keep: [["b", "refused", NOW, 1, "c1"]],
        refresh: ["c1"],
        next: NOW,
      },
    },
    {
      name: "a Perform error counts as a refusal of every task sent, with the error in the reason",
      schedule: { placements: [{ cellId: "c1", tasks: [work("a")] }] },
      answers: { c1: { error: "deadline exceeded" } },
      held: {},
      want: { placed: [], reject: [], keep: [["a", "refused", NOW, 1, "c1"]], refresh: ["c1"], next: NOW },
    },
    {
      name: "the refusal that reaches maxCellRefusals rejects, not permanent, with that cell's reason",
      schedule: { placements: [{ cellId: "c3", tasks: [work("a")] }] },
      answers: { c3: { refused: [{ taskGuid: "a", reason: "draining" }] } },
      held: { a: { attempts: 2, refusals: [refusal("c1"), refusal("c2")] } },
      want: {
        placed: [],
        reject: [["a", "draining", false]],
        keep: [],
        refresh: ["c3"],
        next: Infinity,
      },
    },
    {
      name: "a permanent failure is rejected permanent with schedule()'s text",
      schedule: { failures: [failure("a", "incompatible", true, "found no compatible cell for required rootfs")] },
      answers: {},
      held: {},
      want: {
        placed: [],
        reject: [["a", "found no compatible cell for required rootfs", true]],
        keep: [],
        refresh: [],
        next: Infinity,
      },
    },
    {
      name: "a task that only waits for capacity is kept with the first backoff (jitter at its top)",
      schedule: { failures: [failure("a", "insufficient", false)] },
      answers: {},
      held: {},
      want: { placed: [], reject: [], keep: [["a", "capacity", NOW + 100, 1]], refresh: [], next: NOW + 100 },
    },
    {
      name: "its wait doubles with its attempts, up to the cap",
      schedule: { failures: [failure("a", "insufficient", false), failure("b", "insufficient", false)] },
      answers: {},
      held: { a: { attempts: 2, refusals: [] }, b: { attempts: 9, refusals: [] } },
      want: {
        placed: [],
        reject: [],
        keep: [
          ["a", "capacity", NOW + 400, 3],
          ["b", "capacity", NOW + 800, 10],
        ],
        refresh: [],
        next: NOW + 400,
      },
    },
    {
      name: "no room anywhere after a cell refused it: rejected with the refusing cell's reason",
      schedule: { failures: [failure("a", "insufficient", false)] },
      answers: {},
      held: { a: { attempts: 1, refusals: [refusal("c1", "failed to resolve preloaded:busybox")] } },
      want: {
        placed: [],
        reject: [["a", "failed to resolve preloaded:busybox", false]],
        keep: [],
        refresh: [],
        next: Infinity,
      },
    },
    {
      name: "no compatible cell answered: kept with backoff, never rejected, even after a refusal",
      schedule: { failures: [failure("a", "unreachable", false, "unable to communicate to compatible cells")] },
      answers: {},
      held: { a: { attempts: 1, refusals: [refusal("c1")] } },
      want: { placed: [], reject: [], keep: [["a", "unreachable", NOW + 200, 2]], refresh: [], next: NOW + 200 },
    },
  ])("$name", ({ schedule, answers, held, want }) => {
    const p = plan(
      schedule as Partial<ScheduleResult<TaskWork>>,
      answers as unknown as Record<string, PerformAnswer>,
      held as Record<string, HeldTask>,
    );
    expect(p.placed.map((x) => [x.cellId, x.tasks.map((t) => t.taskGuid)])).toEqual(want.placed);
    expect(p.reject.map((r) => [r.taskGuid, r.reason, r.permanent])).toEqual(want.reject);
    expect(
      p.keep.map((k) => [k.taskGuid, k.cause, k.retryAtMs, k.attempts, ...(k.refusal ? [k.refusal.cellId] : [])]),
    ).toEqual(want.keep);
    expect(p.refresh).toEqual(want.refresh);
    expect(p.nextRoundAtMs).toBe(want.next);
  });

  test("jitter spreads the wait between half and all of it", () => {
    const low = plan({ failures: [failure("a", "insufficient", false)] }, {}, { a: { attempts: 1, refusals: [] } }, 0);
    expect(low.keep[0].retryAtMs).toBe(NOW + 100); // half of 200
  });

  test("a Perform refusal names the cell's reason, or a default when the cell gave none", () => {
    const p = plan(
      { placements: [{ cellId: "c1", tasks: [work("a")] }] },
      { c1: { refused: [create(cellv1.FailedWorkSchema, { taskGuid: "a", reason: "" })] } },
    );
    expect(p.keep[0].refusal).toEqual({ cellId: "c1", reason: "the cell refused the task" });
    expect(p.refused).toBe(1);
  });

  test("counts the tasks that wait only because no cell answered", () => {
    const p = plan({
      failures: [
        failure("a", "unreachable", false),
        failure("b", "unreachable", false),
        failure("c", "insufficient", false),
      ],
    });
    expect(p.unreachable).toBe(2);
  });
});

// The composite actions are pure over a step runner: these tests script the leaves, no container.
import { create } from "@bufbuild/protobuf";
import { ActionSchema, type Action, type EmitProgressAction } from "@diego/proto";
import { codependentStep } from "../src/actions/codependent-step.js";
import { runTree } from "../src/actions/run-action.js";
import { emitProgressStep } from "../src/actions/emit-progress-step.js";
import { parallelStep } from "../src/actions/parallel-step.js";
import { serialStep } from "../src/actions/serial-step.js";
import {
  aggregate,
  cancelledError,
  StepError,
  type StepContext,
  type StepResult,
  type StepRunner,
} from "../src/actions/step.js";
import { timeoutStep } from "../src/actions/timeout-step.js";
import { tryStep } from "../src/actions/try-step.js";

/**
 * A leaf named by its run path: "ok", "fail:<msg>", "hidden:<msg>" (not emittable), "wait:<ms>" (cancellable),
 * "hang" (until cancelled), "exit:<n>" or "exit:<n>/<ms>" (a run exiting n, after ms; cancellable).
 */
const leaf = (path: string): Action => create(ActionSchema, { action: { case: "run", value: { path } } });

interface Recorded {
  started: string[];
  finished: string[];
  cancelled: string[];
  lines: string[];
}

function scripted(): { run: StepRunner; rec: Recorded; ctx: (signal?: AbortSignal) => StepContext } {
  const rec: Recorded = { started: [], finished: [], cancelled: [], lines: [] };
  const run: StepRunner = async (action, ctx): Promise<StepResult> => {
    const path = action.action.case === "run" ? action.action.value.path : "?";
    rec.started.push(path);
    const colon = path.indexOf(":");
    const [kind, arg] = colon < 0 ? [path, ""] : [path.slice(0, colon), path.slice(colon + 1)];
    const [status, after] = kind === "exit" ? arg.split("/").map(Number) : [0, 0];
    const waitMs = kind === "wait" ? Number(arg) : kind === "hang" ? 1e9 : kind === "exit" ? after || 0 : 0;
    if (waitMs) {
      const cancelled = await new Promise<boolean>((resolve) => {
        const t = setTimeout(() => resolve(false), waitMs);
        ctx.signal.addEventListener("abort", () => (clearTimeout(t), resolve(true)), { once: true });
        if (ctx.signal.aborted) {
          clearTimeout(t);
          resolve(true);
        }
      });
      if (cancelled) {
        rec.cancelled.push(path);
        return cancelledError();
      }
    }
    rec.finished.push(path);
    if (kind === "fail") return new StepError(arg, true);
    if (kind === "hidden") return new StepError(arg, false);
    if (kind === "exit") {
      ctx.onExit?.(status);
      if (status !== 0) return new StepError(`${ctx.logSource}: Exited with status ${status}`, true, false, status);
    }
    return undefined;
  };
  const ctx = (signal = new AbortController().signal): StepContext => ({
    signal,
    logSource: "TASK",
    log: (stream, line, source) => rec.lines.push(`${source} ${stream} ${line}`),
  });
  return { run, rec, ctx };
}

describe("serial", () => {
  test("runs in order and succeeds when all succeed", async () => {
    const { run, rec, ctx } = scripted();
    expect(await serialStep([leaf("ok"), leaf("wait:10"), leaf("ok")], ctx(), run)).toBeUndefined();
    expect(rec.finished).toEqual(["ok", "wait:10", "ok"]);
  });
  test("stops at the first failure and returns it", async () => {
    const { run, rec, ctx } = scripted();
    const err = await serialStep([leaf("ok"), leaf("fail:first"), leaf("fail:second")], ctx(), run);
    expect(err?.message).toBe("first");
    expect(rec.started).toEqual(["ok", "fail:first"]);
  });
  test("a cancel reaches the running child and nothing after it starts", async () => {
    const { run, rec, ctx } = scripted();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    const err = await serialStep([leaf("hang"), leaf("ok")], ctx(ac.signal), run);
    expect(err?.cancelled).toBe(true);
    expect(rec.started).toEqual(["hang"]);
  });
});

describe("parallel", () => {
  test("runs all at once, a failure does not stop the others, errors joined with '; '", async () => {
    const { run, rec, ctx } = scripted();
    const err = await parallelStep([leaf("fail:a"), leaf("wait:30"), leaf("fail:b")], ctx(), run);
    expect(err?.message).toBe("a; b");
    expect(err?.emittable).toBe(true);
    expect(rec.finished).toContain("wait:30");
    expect(rec.cancelled).toEqual([]);
  });
  test("succeeds when all succeed", async () => {
    const { run, ctx } = scripted();
    expect(await parallelStep([leaf("ok"), leaf("wait:5")], ctx(), run)).toBeUndefined();
  });
  test("a cancel reaches every child and the result is a cancellation", async () => {
    const { run, rec, ctx } = scripted();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 20);
    const err = await parallelStep([leaf("hang"), leaf("hang")], ctx(ac.signal), run);
    expect(err?.cancelled).toBe(true);
    expect(rec.cancelled).toEqual(["hang", "hang"]);
  });
});

describe("codependent", () => {
  test("the first child to exit successfully stops the others: `Codependent step exited`", async () => {
    const { run, rec, ctx } = scripted();
    const err = await codependentStep([leaf("hang"), leaf("wait:10")], ctx(), run);
    expect(err?.message).toBe("Codependent step exited");
    expect(rec.cancelled).toEqual(["hang"]);
  });
  test("the first child's failure is the error; the stopped ones add nothing", async () => {
    const { run, ctx } = scripted();
    const err = await codependentStep([leaf("hang"), leaf("fail:boom")], ctx(), run);
    expect(err?.message).toBe("boom");
  });
});

describe("timeout", () => {
  test("expiry stops the action and fails with `exceeded <duration> timeout`", async () => {
    const { run, rec, ctx } = scripted();
    const err = await timeoutStep(leaf("hang"), 50, ctx(), run);
    expect(err?.message).toBe("exceeded 50ms timeout");
    expect(err?.emittable).toBe(true);
    expect(rec.cancelled).toEqual(["hang"]);
  });
  test("Go duration format for longer timeouts", async () => {
    const { ctx } = scripted();
    const stuck: StepRunner = async (_a, c) =>
      c.signal.aborted
        ? cancelledError()
        : new Promise((r) => c.signal.addEventListener("abort", () => r(new StepError("late failure", true))));
    const ac = new AbortController();
    const p = timeoutStep(leaf("x"), 90_000, ctx(ac.signal), stuck);
    ac.abort();
    expect((await p)?.message).toBe("late failure");
  });
  test("an emittable error of the stopped action is appended", async () => {
    const { ctx } = scripted();
    const failsWhenStopped: StepRunner = (_a, c) =>
      new Promise((r) =>
        c.signal.addEventListener("abort", () => r(new StepError("sh: Exited with status 143", true))),
      );
    expect((await timeoutStep(leaf("x"), 20, ctx(), failsWhenStopped))?.message).toBe(
      "exceeded 20ms timeout; sh: Exited with status 143",
    );
  });
  test("an action that finishes in time passes its result through", async () => {
    const { run, ctx } = scripted();
    expect(await timeoutStep(leaf("ok"), 1000, ctx(), run)).toBeUndefined();
    expect((await timeoutStep(leaf("fail:no"), 1000, ctx(), run))?.message).toBe("no");
  });
});

describe("try", () => {
  test("always succeeds, reporting the swallowed error", async () => {
    const { run, ctx } = scripted();
    const swallowed: string[] = [];
    expect(await tryStep(leaf("fail:bad"), ctx(), run, (e) => swallowed.push(e.message))).toBeUndefined();
    expect(swallowed).toEqual(["bad"]);
  });
  test("a cancel is forwarded and still swallowed", async () => {
    const { run, rec, ctx } = scripted();
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 10);
    expect(await tryStep(leaf("hang"), ctx(ac.signal), run)).toBeUndefined();
    expect(rec.cancelled).toEqual(["hang"]);
  });
});

describe("emit_progress", () => {
  const ep = (action: Action, extra: Partial<EmitProgressAction> = {}) =>
    ({
      action,
      startMessage: "starting",
      successMessage: "done",
      failureMessagePrefix: "it failed",
      logSource: "",
      ...extra,
    }) as EmitProgressAction;
  test("start and success messages on stdout", async () => {
    const { run, rec, ctx } = scripted();
    expect(await emitProgressStep(ep(leaf("ok")), ctx(), run)).toBeUndefined();
    expect(rec.lines).toEqual(["TASK stdout starting", "TASK stdout done"]);
  });
  test("failure prefix with the emittable error on stderr, result unchanged", async () => {
    const { run, rec, ctx } = scripted();
    const err = await emitProgressStep(ep(leaf("fail:x: Exited with status 1"), { logSource: "STG" }), ctx(), run);
    expect(err?.message).toBe("x: Exited with status 1");
    expect(rec.lines).toEqual(["STG stdout starting", "STG stderr it failed: x: Exited with status 1"]);
  });
  test("a non-emittable error shows only the prefix", async () => {
    const { run, rec, ctx } = scripted();
    await emitProgressStep(ep(leaf("hidden:secret")), ctx(), run);
    expect(rec.lines).toEqual(["TASK stdout starting", "TASK stderr it failed"]);
  });
  test("its log_source applies to the subtree", async () => {
    const { ctx } = scripted();
    const seen: string[] = [];
    const spy: StepRunner = async (_a, c) => (seen.push(c.logSource), undefined);
    await emitProgressStep(ep(leaf("ok"), { logSource: "SUB" }), ctx(), spy);
    expect(seen).toEqual(["SUB"]);
  });
});

describe("exit status: composites pass on the one of the run that decided the outcome", () => {
  test("serial: the failing run's", async () => {
    const { run, ctx } = scripted();
    const err = await serialStep([leaf("exit:0"), leaf("exit:3"), leaf("exit:4")], ctx(), run);
    expect(err).toMatchObject({ message: "TASK: Exited with status 3", exitStatus: 3 });
  });
  test("parallel: the first failure in action order that carries one", async () => {
    const { run, ctx } = scripted();
    const err = await parallelStep([leaf("fail:no run"), leaf("exit:5/30"), leaf("exit:2")], ctx(), run);
    expect(err).toMatchObject({
      message: "no run; TASK: Exited with status 5; TASK: Exited with status 2",
      exitStatus: 5,
    });
    expect(aggregate([new StepError("x", true), cancelledError()])?.exitStatus).toBeUndefined();
  });
  test("codependent: the child that exited first, 0 when it succeeded", async () => {
    const { run, ctx } = scripted();
    expect(await codependentStep([leaf("hang"), leaf("exit:0/10")], ctx(), run)).toMatchObject({
      message: "Codependent step exited",
      exitStatus: 0,
    });
    expect(await codependentStep([leaf("exit:7/5000"), leaf("exit:2/10")], ctx(), run)).toMatchObject({
      message: "TASK: Exited with status 2",
      exitStatus: 2,
    });
    expect((await codependentStep([leaf("hang"), leaf("fail:boom")], ctx(), run))?.exitStatus).toBeUndefined();
  });
  test("timeout: the action's when it ends in time or its shown error; none for a process it stopped", async () => {
    const { run, ctx } = scripted();
    expect((await timeoutStep(leaf("exit:3"), 1000, ctx(), run))?.exitStatus).toBe(3);
    expect(await timeoutStep(leaf("exit:3/5000"), 20, ctx(), run)).toMatchObject({
      message: "exceeded 20ms timeout",
      exitStatus: undefined,
    });
    const failsWhenStopped: StepRunner = (_a, c) =>
      new Promise((r) =>
        c.signal.addEventListener("abort", () => r(new StepError("sh: Exited with status 1", true, false, 1))),
      );
    expect((await timeoutStep(leaf("x"), 20, ctx(), failsWhenStopped))?.exitStatus).toBe(1);
  });
  test("emit_progress passes it through; try succeeds", async () => {
    const { run, ctx } = scripted();
    const ep = {
      action: leaf("exit:6"),
      startMessage: "",
      successMessage: "",
      failureMessagePrefix: "p",
      logSource: "",
    };
    expect((await emitProgressStep(ep as EmitProgressAction, ctx(), run))?.exitStatus).toBe(6);
    expect(await tryStep(leaf("exit:6"), ctx(), run)).toBeUndefined();
  });
  test("runTree: the failure's on failure; on success 0 when a run exited cleanly, else none", async () => {
    const { run, ctx } = scripted();
    const serial = (...paths: string[]): Action =>
      create(ActionSchema, {
        action: { case: "serial", value: { actions: paths.map(leaf) } },
      });
    const tree: StepRunner = (a, c) =>
      a.action.case === "serial"
        ? serialStep(a.action.value.actions, c, tree)
        : a.action.case === "try" && a.action.value.action
          ? tryStep(a.action.value.action, c, tree)
          : run(a, c);
    expect(await runTree(tree, serial("exit:0", "exit:4"), ctx())).toMatchObject({ exitStatus: 4 });
    expect(await runTree(tree, serial("ok", "exit:0", "ok"), ctx())).toEqual({ exitStatus: 0 });
    expect(await runTree(tree, serial("ok"), ctx())).toEqual({ exitStatus: undefined });
    const swallowed = create(ActionSchema, { action: { case: "try", value: { action: leaf("exit:9") } } });
    expect(await runTree(tree, swallowed, ctx())).toEqual({ exitStatus: undefined });
  });
});

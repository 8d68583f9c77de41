import type { Action } from "@diego/proto";
import { codependentStep } from "./codependent-step.js";
import { downloadStep } from "./download-step.js";
import type { DownloadCache } from "./download-cache.js";
import { emitProgressStep } from "./emit-progress-step.js";
import { parallelStep } from "./parallel-step.js";
import { runStep } from "./run-step.js";
import { serialStep } from "./serial-step.js";
import { StepError, withSource, type StepContext, type StepResult, type StepRunner } from "./step.js";
import { timeoutStep } from "./timeout-step.js";
import { tryStep } from "./try-step.js";
import { uploadStep } from "./upload-step.js";
import type { EgressPolicy } from "@diego/kit";
import { overriding, type ContainerRuntime } from "../runtime/container-runtime.js";
import { homeDirFor, type ImageHomes } from "./container-files.js";
import { instanceVariables } from "./instance-env.js";

export interface ActionDeps {
  runtime: ContainerRuntime;
  containerId: string;
  cache: DownloadCache;
  gracefulShutdownMs: number;
  /** The task guid (downloads share the pool per task). */
  owner?: string;
  /** Where uploads may go, and how big one may be (docs/security.md). */
  egress?: EgressPolicy;
  uploadMaxBytes?: number;
  /** Component-log hook for errors that are not the task's to see (try, upload attempts). */
  note?: (message: string) => void;
  /** The cell's address, every process's CF_INSTANCE_IP. */
  instanceIp?: string;
  /** Run actions whose processes may run at once in this task (docs/limits.md); default: no limit. */
  maxProcesses?: number;
  /** Wraps every step, composites' children included (the executor records and replays progress with it). */
  around?: (action: Action, ctx: StepContext, step: StepRunner) => Promise<StepResult>;
  /** Home directories known of images: used (and filled) while the container is `pristine`. */
  imageHomes?: ImageHomes;
  /** The container is new (or a never-used pooled one): nothing ran or was written in it yet. */
  pristine?: boolean;
}

/** The failure text of a run action past the cell's limit of concurrent processes per task. */
export const tooManyProcesses = (max: number): string =>
  `more than ${max} processes of the task at once: the cell's limit (--max-task-processes ${max})`;

/**
 * The step runner of one task's container: each action type to its step, composites recursing; timeout,
 * try, parallel, codependent (and emit_progress) give their subtree their log_source when set; serial's is
 * ignored, as in Diego. Each user's home directory and the CF_INSTANCE_* env are looked up once per runner;
 * a home is taken from what is known of the image while nothing has changed the container yet.
 */
export function actionRunner(deps: ActionDeps): StepRunner {
  // Calls that can change the container's files: until the first, they are the image's.
  let changes = deps.pristine ? 0 : 1;
  const runtime = overriding(deps.runtime, {
    exec: (...args) => {
      changes++;
      return deps.runtime.exec(...args);
    },
    putArchive: (...args) => {
      changes++;
      return deps.runtime.putArchive(...args);
    },
  });
  const lookUp = async (user: string): Promise<string> => {
    const known = deps.imageHomes;
    if (!known || changes > 0) return (await homeDirFor(runtime, deps.containerId, user)).dir;
    const image = await runtime.imageOf(deps.containerId);
    const home = known.get(image, user);
    if (home !== undefined && changes === 0) return home;
    const found = await homeDirFor(runtime, deps.containerId, user);
    if (found.existed && changes === 0) known.set(image, user, found.dir);
    return found.dir;
  };
  const homes = new Map<string, Promise<string>>();
  const workDir = (user: string): Promise<string> => {
    let home = homes.get(user);
    if (!home) {
      home = lookUp(user);
      home.catch(() => homes.delete(user));
      homes.set(user, home);
    }
    return home;
  };
  let env: Promise<string[]> | undefined;
  const instanceEnv = (): Promise<string[]> => {
    env ??= runtime.address(deps.containerId).then((ip) => instanceVariables(deps.instanceIp ?? "", ip));
    env.catch(() => (env = undefined));
    return env;
  };
  const stepDeps = { ...deps, runtime };
  const runDeps = { ...stepDeps, workDir, instanceEnv };
  let processes = 0;
  const around = deps.around;
  const run: StepRunner = around ? (action, ctx) => around(action, ctx, step) : (action, ctx) => step(action, ctx);
  const step: StepRunner = async (action: Action, ctx) => {
    const a = action.action;
    switch (a.case) {
      case "run": {
        if (deps.maxProcesses !== undefined && processes >= deps.maxProcesses) {
          return new StepError(tooManyProcesses(deps.maxProcesses), true);
        }
        processes++;
        try {
          return await runStep(a.value, ctx, runDeps);
        } finally {
          processes--;
        }
      }
      case "download":
        return downloadStep(a.value, ctx, stepDeps);
      case "upload":
        return uploadStep(a.value, ctx, { ...stepDeps, onAttemptFailed: deps.note });
      case "timeout":
        if (!a.value.action) return new StepError("timeout action has no action", false);
        return timeoutStep(a.value.action, Number(a.value.timeoutMs), withSource(ctx, a.value.logSource), run);
      case "emitProgress":
        return emitProgressStep(a.value, ctx, run);
      case "try": {
        if (!a.value.action) return undefined;
        const inner = withSource(ctx, a.value.logSource);
        return tryStep(a.value.action, inner, run, (err) =>
          deps.note?.(`try (${inner.logSource}) swallowed: ${err.message}`),
        );
      }
      case "serial":
        // Diego ignores a serial's log_source; here it names its subtree like every other composite's.
        return serialStep(a.value.actions, withSource(ctx, a.value.logSource), run);
      case "parallel":
        return parallelStep(a.value.actions, withSource(ctx, a.value.logSource), run);
      case "codependent":
        return codependentStep(a.value.actions, withSource(ctx, a.value.logSource), run);
      default:
        return new StepError("invalid action type", false);
    }
  };
  return run;
}

/** What an action tree ended with: its error (none on success) and Task.exit_status. */
export interface TreeOutcome {
  error?: StepError;
  exitStatus?: number;
}

/**
 * Runs a whole action tree and says which exit status decided it: on failure, the root error's (each
 * composite passes on its deciding run's, see docs/contract.md, actions); on success, 0 when some run
 * action exited cleanly, else none (no run ran, or only failures a try swallowed).
 */
export async function runTree(run: StepRunner, action: Action, ctx: StepContext): Promise<TreeOutcome> {
  let clean = false;
  const error = await run(action, {
    ...ctx,
    onExit: (status) => {
      if (status === 0) clean = true;
      ctx.onExit?.(status);
    },
  });
  if (error) return { error, exitStatus: error.exitStatus };
  return { exitStatus: clean ? 0 : undefined };
}

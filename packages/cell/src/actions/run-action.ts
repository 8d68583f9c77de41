import type { Action } from "@diego/proto";
import { codependentStep } from "./codependent-step.js";
import { downloadStep } from "./download-step.js";
import type { DownloadCache } from "./download-cache.js";
import { emitProgressStep } from "./emit-progress-step.js";
import { parallelStep } from "./parallel-step.js";
import { runStep } from "./run-step.js";
import { serialStep } from "./serial-step.js";
import { StepError, type StepContext, type StepResult, type StepRunner } from "./step.js";
import { timeoutStep } from "./timeout-step.js";
import { tryStep } from "./try-step.js";
import { uploadStep } from "./upload-step.js";
import type { EgressPolicy } from "@diego/kit";
import type { ContainerRuntime } from "../runtime/container-runtime.js";

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
  /** Wraps every step, composites' children included (the executor records and replays progress with it). */
  around?: (action: Action, ctx: StepContext, step: StepRunner) => Promise<StepResult>;
}

/** The step runner of one task's container: each action type to its step, composites recursing. */
export function actionRunner(deps: ActionDeps): StepRunner {
  const around = deps.around;
  const run: StepRunner = around ? (action, ctx) => around(action, ctx, step) : (action, ctx) => step(action, ctx);
  const step: StepRunner = async (action: Action, ctx) => {
    const a = action.action;
    switch (a.case) {
      case "run":
        return runStep(a.value, ctx, deps);
      case "download":
        return downloadStep(a.value, ctx, deps);
      case "upload":
        return uploadStep(a.value, ctx, { ...deps, onAttemptFailed: deps.note });
      case "timeout":
        if (!a.value.action) return new StepError("timeout action has no action", false);
        return timeoutStep(a.value.action, Number(a.value.timeoutMs), ctx, run);
      case "emitProgress":
        return emitProgressStep(a.value, ctx, run);
      case "try":
        if (!a.value.action) return undefined;
        return tryStep(a.value.action, ctx, run, (err) => deps.note?.(`try swallowed: ${err.message}`));
      case "serial":
        return serialStep(a.value.actions, ctx, run);
      case "parallel":
        return parallelStep(a.value.actions, ctx, run);
      case "codependent":
        return codependentStep(a.value.actions, ctx, run);
      default:
        return new StepError("invalid action type", false);
    }
  };
  return run;
}

import type { EmitProgressAction } from "@diego/proto";
import { type StepContext, type StepResult, type StepRunner } from "./step.js";

/** Writes start_message before the action, success_message after it succeeds, failure_message_prefix(: error) after it fails. */
export async function emitProgressStep(a: EmitProgressAction, ctx: StepContext, run: StepRunner): Promise<StepResult> {
  const source = a.logSource || ctx.logSource;
  const inner = { ...ctx, logSource: source };
  if (a.startMessage) ctx.log("stdout", a.startMessage, source);
  const err = a.action ? await run(a.action, inner) : undefined;
  if (!err) {
    if (a.successMessage) ctx.log("stdout", a.successMessage, source);
  } else if (a.failureMessagePrefix && !err.cancelled) {
    ctx.log("stderr", err.emittable ? `${a.failureMessagePrefix}: ${err.message}` : a.failureMessagePrefix, source);
  }
  return err;
}

import type { Action } from "@diego/proto";
import { cancelledError, type StepContext, type StepResult, type StepRunner } from "./step.js";

/** Runs the actions in order and stops at the first failure, which it returns. */
export async function serialStep(actions: readonly Action[], ctx: StepContext, run: StepRunner): Promise<StepResult> {
  for (const action of actions) {
    if (ctx.signal.aborted) return cancelledError();
    const err = await run(action, ctx);
    if (err) return err;
  }
  return undefined;
}

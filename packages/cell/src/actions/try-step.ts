import type { Action } from "@diego/proto";
import type { StepContext, StepResult, StepRunner } from "./step.js";

/** Runs the action and succeeds whatever it does (a cancel still reaches the action). */
export async function tryStep(
  action: Action,
  ctx: StepContext,
  run: StepRunner,
  onSwallowed?: (err: Error) => void,
): Promise<StepResult> {
  const err = await run(action, ctx);
  if (err && !err.cancelled) onSwallowed?.(err);
  return undefined;
}

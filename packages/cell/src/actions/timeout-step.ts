import type { Action } from "@diego/proto";
import { timeoutExceeded } from "@diego/models";
import { childController, StepError, type StepContext, type StepResult, type StepRunner } from "./step.js";

/**
 * Runs the action with a timer; on expiry it stops the action, waits for it to finish and fails with
 * `exceeded <duration> timeout` (plus `; <error>` when the action's own error can be shown, whose exit
 * status it then carries; a process the timeout stopped reports none).
 */
export async function timeoutStep(
  action: Action,
  timeoutMs: number,
  ctx: StepContext,
  run: StepRunner,
): Promise<StepResult> {
  const { controller, dispose } = childController(ctx.signal);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort("timeout");
  }, timeoutMs);
  const err = await run(action, { ...ctx, signal: controller.signal });
  clearTimeout(timer);
  dispose();
  if (timedOut && !ctx.signal.aborted) {
    const shown = err && err.emittable && !err.cancelled ? err : undefined;
    return new StepError(
      `${timeoutExceeded(timeoutMs)}${shown ? `; ${shown.message}` : ""}`,
      true,
      false,
      shown?.exitStatus,
    );
  }
  return err;
}

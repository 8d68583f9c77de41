import type { Action } from "@diego/proto";
import { aggregate, childController, StepError, type StepContext, type StepResult, type StepRunner } from "./step.js";

export const CODEPENDENT_EXITED = "Codependent step exited";

/**
 * Starts every action at once; the first to exit, for any reason, stops the others. Its exit counts as
 * an error (`Codependent step exited` when it succeeded), so a codependent action always fails once
 * any child ends (docs/contract.md, actions): it is meant for "run until one dies".
 */
export async function codependentStep(
  actions: readonly Action[],
  ctx: StepContext,
  run: StepRunner,
): Promise<StepResult> {
  const { controller, dispose } = childController(ctx.signal);
  let first = true;
  const results = await Promise.all(
    actions.map(async (a) => {
      const err = await run(a, { ...ctx, signal: controller.signal });
      if (first) {
        first = false;
        controller.abort("codependent");
        return err ?? (ctx.signal.aborted ? undefined : new StepError(CODEPENDENT_EXITED, false));
      }
      return err;
    }),
  );
  dispose();
  return aggregate(results);
}

import type { Action } from "@diego/proto";
import { aggregate, childController, StepError, type StepContext, type StepResult, type StepRunner } from "./step.js";

export const CODEPENDENT_EXITED = "Codependent step exited";

/**
 * Starts every action at once; the first to exit, for any reason, stops the others. Its exit counts as
 * an error (`Codependent step exited` when it succeeded), so a codependent action always fails once
 * any child ends (docs/contract.md, actions): it is meant for "run until one dies". The exit status is
 * that of the first child's deciding run (0 when it succeeded).
 */
export async function codependentStep(
  actions: readonly Action[],
  ctx: StepContext,
  run: StepRunner,
): Promise<StepResult> {
  const { controller, dispose } = childController(ctx.signal);
  let first = true;
  let decided: number | undefined;
  const results = await Promise.all(
    actions.map(async (a) => {
      let exit: number | undefined;
      const onExit = (status: number) => {
        exit = status;
        ctx.onExit?.(status);
      };
      const err = await run(a, { ...ctx, signal: controller.signal, onExit });
      if (first) {
        first = false;
        controller.abort("codependent");
        decided = err ? err.exitStatus : exit;
        return err ?? (ctx.signal.aborted ? undefined : new StepError(CODEPENDENT_EXITED, false, false, exit));
      }
      return err;
    }),
  );
  dispose();
  return aggregate(results, decided);
}

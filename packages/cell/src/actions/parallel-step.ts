import type { Action } from "@diego/proto";
import { aggregate, type StepContext, type StepResult, type StepRunner } from "./step.js";

/** Starts every action at once and waits for all; a failure does not stop the others. Errors are joined with `; `. */
export async function parallelStep(actions: readonly Action[], ctx: StepContext, run: StepRunner): Promise<StepResult> {
  return aggregate(await Promise.all(actions.map((a) => run(a, ctx))));
}

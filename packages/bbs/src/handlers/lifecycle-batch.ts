import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskLifecycleServiceImpl } from "./deps.js";

/** Several StartTask, RunningTask, CompleteTask and RejectTask calls of one cell in one, answered in order. */
export const lifecycleBatch =
  ({ controller }: HandlerDeps): TaskLifecycleServiceImpl["lifecycleBatch"] =>
  async (req, ctx) => ({
    results: await controller.lifecycleBatch(req.cellId, req.items, callerActor(ctx, "cell")),
  });

import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

/** Several DesireTask, CancelTask, ResolvingTask and DeleteTask calls in one, answered in order. */
export const taskBatch =
  ({ controller }: HandlerDeps): TaskServiceImpl["taskBatch"] =>
  async (req, ctx) => ({ results: await controller.taskBatch(req.items, callerActor(ctx, "client")) });

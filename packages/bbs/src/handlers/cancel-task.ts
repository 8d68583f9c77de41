import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

/** → COMPLETED failed `task was cancelled`; the task's cell is told to stop its container. */
export const cancelTask =
  ({ controller }: HandlerDeps): TaskServiceImpl["cancelTask"] =>
  async (req, ctx) => {
    await controller.cancel(req.taskGuid, callerActor(ctx, "client"));
    return {};
  };

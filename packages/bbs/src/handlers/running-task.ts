import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskLifecycleServiceImpl } from "./deps.js";

export const runningTask =
  ({ controller }: HandlerDeps): TaskLifecycleServiceImpl["runningTask"] =>
  async (req, ctx) => {
    await controller.running(req.taskGuid, req.cellId, callerActor(ctx, "cell"));
    return {};
  };

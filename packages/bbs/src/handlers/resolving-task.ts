import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

export const resolvingTask =
  ({ controller }: HandlerDeps): TaskServiceImpl["resolvingTask"] =>
  async (req, ctx) => {
    await controller.resolving(req.taskGuid, callerActor(ctx, "client"));
    return {};
  };

import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

export const deleteTask =
  ({ controller }: HandlerDeps): TaskServiceImpl["deleteTask"] =>
  async (req, ctx) => {
    await controller.delete(req.taskGuid, callerActor(ctx, "client"));
    return {};
  };

import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

export const resolvingTask =
  ({ controller }: HandlerDeps): TaskServiceImpl["resolvingTask"] =>
  async (req) => {
    await controller.resolving(req.taskGuid);
    return {};
  };

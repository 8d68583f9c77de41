import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

export const deleteTask =
  ({ controller }: HandlerDeps): TaskServiceImpl["deleteTask"] =>
  async (req) => {
    await controller.delete(req.taskGuid);
    return {};
  };

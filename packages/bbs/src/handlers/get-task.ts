import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

export const getTask =
  ({ controller }: HandlerDeps): TaskServiceImpl["getTask"] =>
  (req) =>
    controller.get(req.taskGuid);

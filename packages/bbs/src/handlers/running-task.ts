import type { HandlerDeps, TaskLifecycleServiceImpl } from "./deps.js";

export const runningTask =
  ({ controller }: HandlerDeps): TaskLifecycleServiceImpl["runningTask"] =>
  async (req) => {
    await controller.running(req.taskGuid, req.cellId);
    return {};
  };

import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

/** Validates, stores the task PENDING (create-if-absent) and queues it for auction. */
export const desireTask =
  ({ controller }: HandlerDeps): TaskServiceImpl["desireTask"] =>
  async (req) => ({ task: await controller.desire(req) });

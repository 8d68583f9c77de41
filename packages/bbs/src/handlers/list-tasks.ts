import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

/** Filters by domain, cell_id and state; empty filters match all. */
export const listTasks =
  ({ controller }: HandlerDeps): TaskServiceImpl["listTasks"] =>
  async (req) => ({ tasks: await controller.list({ domain: req.domain, cellId: req.cellId, state: req.state }) });

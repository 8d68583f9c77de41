import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

/** Validates, stores the task PENDING (create-if-absent) and queues it for auction. */
export const desireTask =
  ({ controller }: HandlerDeps): TaskServiceImpl["desireTask"] =>
  async (req, ctx) => ({ task: await controller.desire(req, callerActor(ctx, "client")) });

import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskLifecycleServiceImpl } from "./deps.js";

/** PENDING → CLAIMED by this cell; again from the same cell: should_start false. Carries image_password. */
export const startTask =
  ({ controller }: HandlerDeps): TaskLifecycleServiceImpl["startTask"] =>
  (req, ctx) =>
    controller.start(req.taskGuid, req.cellId, callerActor(ctx, "cell"));

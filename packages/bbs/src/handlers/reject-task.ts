import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskLifecycleServiceImpl } from "./deps.js";

/** Back to PENDING and auctioned again at once, or COMPLETED failed after max_task_retries or when permanent. */
export const rejectTask =
  ({ controller }: HandlerDeps): TaskLifecycleServiceImpl["rejectTask"] =>
  (req, ctx) =>
    controller.reject(
      req.taskGuid,
      req.rejectionReason,
      req.cellId,
      callerActor(ctx, req.cellId ? "cell" : "auctioneer"),
      req.permanent,
    );

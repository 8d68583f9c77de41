import { callerActor } from "./caller-actor.js";
import type { HandlerDeps, TaskLifecycleServiceImpl } from "./deps.js";

/** CLAIMED or RUNNING on this cell → COMPLETED; refused (FAILED_PRECONDITION) from any other cell. */
export const completeTask =
  ({ controller }: HandlerDeps): TaskLifecycleServiceImpl["completeTask"] =>
  async (req, ctx) => {
    await controller.complete(
      req.taskGuid,
      req.cellId,
      req.failed,
      req.failureReason,
      req.result,
      callerActor(ctx, "cell"),
      { exitStatus: req.exitStatus, failureKind: req.failureKind, usage: req.usage, logTail: req.logTail },
    );
    return {};
  };

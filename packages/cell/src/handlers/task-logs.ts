import { taskNotFound } from "@diego/models";
import { LogLine_Stream, type TaskLogsRequest } from "@diego/proto";
import type { CallContext } from "@diego/kit";
import type { TaskLogStore } from "../logs/task-log-store.js";

/** CellRepService.TaskLogs: a task's output so far and, with follow, until the task ends. */
export function taskLogs(logs: TaskLogStore) {
  return async function* (req: TaskLogsRequest, ctx: CallContext) {
    if (!logs.has(req.taskGuid)) throw taskNotFound(req.taskGuid);
    for await (const line of logs.read(req.taskGuid, req.follow, ctx.signal)) {
      yield {
        timestamp: line.timestamp,
        source: line.source,
        instance: "0",
        stream: line.stream === "stderr" ? LogLine_Stream.STDERR : LogLine_Stream.STDOUT,
        message: line.message,
      };
    }
  };
}

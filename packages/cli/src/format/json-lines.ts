import { toJson } from "@bufbuild/protobuf";
import {
  CellPresenceSchema,
  LogLineSchema,
  TaskEventSchema,
  type CellPresence,
  type LogLine,
  type TaskEvent,
} from "@diego/proto";
import { int64AsIntegers, redactTask, taskToJsonText } from "@diego/models";

/**
 * `--json` output: one JSON object per line, snake_case names, enums by name, int64 as JSON integers,
 * never image_password (the same rules as taskToJsonText and the completion callback).
 */
export { taskToJsonText as taskJson };

export function eventJson(event: TaskEvent): string {
  const e = event.event;
  const redacted: TaskEvent =
    e.case === "changed"
      ? {
          ...event,
          event: {
            case: "changed",
            value: {
              ...e.value,
              before: e.value.before && redactTask(e.value.before),
              after: e.value.after && redactTask(e.value.after),
            },
          },
        }
      : e.case === "created" || e.case === "removed"
        ? ({
            ...event,
            event: { case: e.case, value: { ...e.value, task: e.value.task && redactTask(e.value.task) } },
          } as TaskEvent)
        : event;
  return int64AsIntegers(toJson(TaskEventSchema, redacted, { useProtoFieldName: true }));
}

export function logLineJson(line: LogLine): string {
  return int64AsIntegers(toJson(LogLineSchema, line, { useProtoFieldName: true, alwaysEmitImplicit: true }));
}

export function cellJson(cell: CellPresence): string {
  return JSON.stringify(toJson(CellPresenceSchema, cell, { useProtoFieldName: true, alwaysEmitImplicit: true }));
}

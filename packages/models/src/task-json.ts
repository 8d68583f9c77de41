import { toJson } from "@bufbuild/protobuf";
import { TaskSchema, type Task } from "@diego/proto";

/** The task as anyone but its cell may see it: image_password and secret_env are never returned. */
export function redactTask(task: Task): Task {
  return task.imagePassword || task.secretEnv.length ? { ...task, imagePassword: "", secretEnv: [] } : task;
}

const INT64_MARK = "\u0000int64:";
const INT64_KEYS = new Set([
  "created_at",
  "updated_at",
  "first_completed_at",
  "claimed_at",
  "started_at",
  "completed_at",
  "timeout_ms",
  "timestamp",
  "peak_memory_bytes",
  "cpu_time_ns",
]);

/**
 * A task as JSON text: snake_case names, `state` as its name, int64 fields as JSON integers (not the
 * strings of proto3 JSON), empty fields left out, image_password never included.
 */
export function taskToJsonText(task: Task, space?: number): string {
  const json = toJson(TaskSchema, redactTask(task), { useProtoFieldName: true });
  return int64AsIntegers(json, space);
}

/** JSON.stringify that writes the int64 fields (proto3 JSON strings) as bare integers, without precision loss. */
export function int64AsIntegers(json: unknown, space?: number): string {
  const text = JSON.stringify(
    json,
    (key, value) =>
      INT64_KEYS.has(key) && typeof value === "string" && /^-?\d+$/.test(value) ? INT64_MARK + value : value,
    space,
  );
  return text.replace(/"\\u0000int64:(-?\d+)"/g, "$1");
}

import { TaskState } from "@diego/proto";
import { invalidArgument } from "@diego/models";

/** The names of the live task states, as docs/contract.md spells them (`"state": "PENDING"`); lower case is accepted too. */
export const TASK_STATE_NAMES = ["PENDING", "CLAIMED", "RUNNING", "COMPLETED", "RESOLVING"] as const;
export type TaskStateName = (typeof TASK_STATE_NAMES)[number] | Lowercase<(typeof TASK_STATE_NAMES)[number]>;

/** `running` / `RUNNING` → TaskState.RUNNING; anything else is INVALID_ARGUMENT naming `state`. */
export function parseTaskState(name: string): TaskState {
  const upper = name.trim().toUpperCase();
  if ((TASK_STATE_NAMES as readonly string[]).includes(upper)) return TaskState[upper as keyof typeof TaskState];
  throw invalidArgument([
    { field: "state", message: `must be one of ${TASK_STATE_NAMES.join(", ")} (got ${JSON.stringify(name)})` },
  ]);
}

export function taskStateName(state: TaskState): string {
  return TaskState[state] ?? String(state);
}

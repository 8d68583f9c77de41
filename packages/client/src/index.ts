export {
  DiegoClient,
  DEFAULT_BBS_ADDRESS,
  type DiegoClientOptions,
  type ListOptions,
  type TaskPage,
  type RequestOptions,
  type TaskCreateInit,
  type TaskFilter,
} from "./diego-client.js";
export {
  decideAfterCut,
  isResync,
  type CutDecision,
  type TaskResync,
  type WatchFilter,
  type WatchItem,
  type WatchOptions,
} from "./resumable-watch.js";
export { runToCompletion, type RunToCompletionOptions, type TaskFollowApi } from "./run-to-completion.js";
export { parseTaskFile, type ParseTaskFileOptions } from "./task-file.js";
export { parseTaskState, taskStateName, TASK_STATE_NAMES, type TaskStateName } from "./task-state.js";
// The one error type, re-exported so that users of the client need no second import.
export { DiegoError, type ErrorCode, type FieldViolation } from "@diego/models";
export type { TlsFiles } from "@diego/kit";

export { startBbs, type RunningBbs, type StartBbsOptions } from "./start-bbs.js";
export { bbsSettings, bbsConfig, type BbsConfig } from "./config.js";
export type { TaskStore, TaskFilter, TaskChange, TaskStoreEvent, Mutation, ApplyResult } from "./store/task-store.js";
export { MemoryTaskStore } from "./store/memory-task-store.js";
export { EtcdTaskStore } from "./store/etcd-task-store.js";
export { encodeTask, decodeTask } from "./store/task-entry.js";
export {
  planConvergence,
  type ConvergencePlan,
  type ConvergenceDurations,
  type TaskFacts,
} from "./convergence/plan.js";
export { Keys } from "./keys.js";

import type { GrpcServer } from "@diego/kit";
import { CellRegistryService, CellService, LockService, TaskLifecycleService, TaskService } from "@diego/proto";
import { cancelTask } from "./cancel-task.js";
import { completeTask } from "./complete-task.js";
import { deleteTask } from "./delete-task.js";
import type { CellServiceImpl, HandlerDeps, TaskServiceImpl } from "./deps.js";
import { deregister } from "./deregister.js";
import { desireTask } from "./desire-task.js";
import { fetchLock } from "./fetch-lock.js";
import { getTask } from "./get-task.js";
import { heartbeat } from "./heartbeat.js";
import { listCells } from "./list-cells.js";
import { lifecycleBatch } from "./lifecycle-batch.js";
import { listTasks } from "./list-tasks.js";
import { lock } from "./lock.js";
import { scopedTaskApi } from "./scoped-client-api.js";
import { rejectTask } from "./reject-task.js";
import { release } from "./release.js";
import { resolvingTask } from "./resolving-task.js";
import { runningTask } from "./running-task.js";
import { startTask } from "./start-task.js";
import { taskBatch } from "./task-batch.js";
import { taskLogs } from "./task-logs.js";
import { watchTasks } from "./watch-tasks.js";

export type { HandlerDeps } from "./deps.js";

/** The client API's handlers (served over gRPC, and called in-process by the console). */
export function clientApi(deps: HandlerDeps): { tasks: TaskServiceImpl; cells: CellServiceImpl } {
  const tasks: TaskServiceImpl = {
    desireTask: desireTask(deps),
    getTask: getTask(deps),
    listTasks: listTasks(deps),
    cancelTask: cancelTask(deps),
    resolvingTask: resolvingTask(deps),
    deleteTask: deleteTask(deps),
    watchTasks: watchTasks(deps),
    taskLogs: taskLogs(deps),
    taskBatch: taskBatch(deps),
  };
  return {
    tasks: deps.scopes ? scopedTaskApi(tasks, deps.scopes, deps.controller) : tasks,
    cells: { listCells: listCells(deps) },
  };
}

/** Adds the five BBS services to the server. */
export function addBbsServices(server: GrpcServer, deps: HandlerDeps, api = clientApi(deps)): void {
  server
    .add(TaskService, api.tasks)
    .add(CellService, api.cells)
    .add(TaskLifecycleService, {
      startTask: startTask(deps),
      runningTask: runningTask(deps),
      completeTask: completeTask(deps),
      rejectTask: rejectTask(deps),
      lifecycleBatch: lifecycleBatch(deps),
    })
    .add(CellRegistryService, { heartbeat: heartbeat(deps), deregister: deregister(deps) })
    .add(LockService, { lock: lock(deps), release: release(deps), fetchLock: fetchLock(deps) });
}

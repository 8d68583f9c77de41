import type { Logger, ServiceImpl } from "@diego/kit";
import type { CellRegistryService, CellService, LockService, TaskLifecycleService, TaskService } from "@diego/proto";
import type { PresenceStore } from "../cells/presence-store.js";
import type { TaskController } from "../controller/task-controller.js";
import type { EventHub } from "../events/event-hub.js";
import type { GrpcClients } from "../grpc-clients.js";
import type { LockStore } from "../locks/lock-store.js";
import type { TaskStore } from "../store/task-store.js";
import type { ClientScopes } from "./client-scope.js";

/** What the RPC handlers use; each handler file is one RPC. */
export interface HandlerDeps {
  controller: TaskController;
  store: TaskStore;
  hub: EventHub;
  presence: PresenceStore;
  locks: LockStore;
  clients: GrpcClients;
  logger: Logger;
  /** What the operator limits client identities to (none: only the authorization table applies). */
  scopes?: ClientScopes;
}

export type TaskServiceImpl = ServiceImpl<(typeof TaskService)["method"]>;
export type CellServiceImpl = ServiceImpl<(typeof CellService)["method"]>;
export type TaskLifecycleServiceImpl = ServiceImpl<(typeof TaskLifecycleService)["method"]>;
export type CellRegistryServiceImpl = ServiceImpl<(typeof CellRegistryService)["method"]>;
export type LockServiceImpl = ServiceImpl<(typeof LockService)["method"]>;

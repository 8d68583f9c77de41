import type { Role } from "./identity.js";

/**
 * What one role may do with one RPC: `true` (any call), `{ ownId }` (only when the request field
 * at that path, e.g. `cellId` or `cell.cellId`, is the caller's own id), or `{ field, equals }`
 * (only when the field holds that value).
 */
export type Grant = true | { ownId: string } | { field: string; equals: string };

/** The roles that may call one RPC, and how. A role not named may not call it. */
export type Rule = Partial<Record<Role, Grant>>;

/** RPC path (`/package.Service/Method`) → rule. An RPC missing from the table is refused to everyone. */
export type AuthorizationTable = Readonly<Record<string, Rule>>;

const client = { client: true } as const;

/**
 * The one authorization table of the system, enforced by kit's gRPC server before any handler runs
 * (docs/security.md). Health and reflection are not in it: any authenticated caller may use them.
 */
export const AUTHORIZATION: AuthorizationTable = {
  // The client API.
  "/diego.bbs.v1.TaskService/DesireTask": client,
  "/diego.bbs.v1.TaskService/GetTask": client,
  // A cell's reconcile lists the tasks the BBS believes it has.
  "/diego.bbs.v1.TaskService/ListTasks": { client: true, cell: { ownId: "cellId" } },
  "/diego.bbs.v1.TaskService/CancelTask": client,
  "/diego.bbs.v1.TaskService/ResolvingTask": client,
  "/diego.bbs.v1.TaskService/DeleteTask": client,
  "/diego.bbs.v1.TaskService/WatchTasks": client,
  "/diego.bbs.v1.TaskService/TaskLogs": client,
  "/diego.bbs.v1.TaskService/TaskBatch": client,
  "/diego.bbs.v1.CellService/ListCells": { client: true, auctioneer: true },
  // The task lifecycle: a cell acts only on its own behalf; the auctioneer rejects what it cannot place.
  "/diego.bbs.v1.TaskLifecycleService/StartTask": { cell: { ownId: "cellId" } },
  "/diego.bbs.v1.TaskLifecycleService/RunningTask": { cell: { ownId: "cellId" } },
  "/diego.bbs.v1.TaskLifecycleService/CompleteTask": { cell: { ownId: "cellId" } },
  "/diego.bbs.v1.TaskLifecycleService/RejectTask": {
    cell: { ownId: "cellId" },
    auctioneer: { field: "cellId", equals: "" },
  },
  // Every item of a cell's batch acts for the batch's cell_id (an item naming another cell is refused).
  "/diego.bbs.v1.TaskLifecycleService/LifecycleBatch": { cell: { ownId: "cellId" } },
  "/diego.bbs.v1.CellRegistryService/Heartbeat": { cell: { ownId: "cell.cellId" } },
  "/diego.bbs.v1.CellRegistryService/Deregister": { cell: { ownId: "cellId" } },
  // The auctioneer's lock is the only lock there is.
  "/diego.bbs.v1.LockService/Lock": { auctioneer: { field: "key", equals: "auctioneer" } },
  "/diego.bbs.v1.LockService/Release": { auctioneer: { field: "key", equals: "auctioneer" } },
  "/diego.bbs.v1.LockService/FetchLock": { auctioneer: { field: "key", equals: "auctioneer" } },
  // The auctioneer takes auction requests from the BBS only.
  "/diego.auctioneer.v1.AuctioneerService/RequestTaskAuctions": { bbs: true },
  // A cell takes work from the auctioneer and instructions from the BBS only.
  "/diego.cell.v1.CellRepService/State": { auctioneer: true, bbs: true },
  "/diego.cell.v1.CellRepService/Perform": { auctioneer: true },
  "/diego.cell.v1.CellRepService/CancelTask": { bbs: true },
  "/diego.cell.v1.CellRepService/TaskLogs": { bbs: true },
};

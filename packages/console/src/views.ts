// What the console shows, as pure values built from the public messages (docs/console.md): tasks
// without their secrets, a task's timeline, cells with their capacity, counts, filters and pages.
import { toJson, type JsonObject } from "@bufbuild/protobuf";
import { CellPresenceSchema, TaskSchema, TaskState, type CellPresence, type Task } from "@diego/proto";

/** A task as the console's JSON: every field under its proto name, secrets never (even if a caller had them). */
export function taskJson(task: Task): JsonObject {
  const json = toJson(TaskSchema, task, { useProtoFieldName: true }) as JsonObject;
  delete json.image_password;
  delete json.secret_env;
  return json;
}

export function cellJson(cell: CellPresence): JsonObject {
  return toJson(CellPresenceSchema, cell, { useProtoFieldName: true, alwaysEmitImplicit: true }) as JsonObject;
}

export interface TimelineEntry {
  state: string;
  /** Unix milliseconds. */
  at: number;
  detail?: string;
}

const ms = (ns: bigint) => Number(ns / 1_000_000n);

/** The transitions the task's times record, in order: created, claimed, running, completed (and resolving). */
export function timeline(task: Task): TimelineEntry[] {
  const entries: TimelineEntry[] = [{ state: "PENDING", at: ms(task.createdAt), detail: "desired" }];
  if (task.rejectionCount > 0)
    entries.push({
      state: "PENDING",
      at: task.claimedAt > 0n ? ms(task.claimedAt) : ms(task.updatedAt),
      detail: `rejected ${task.rejectionCount}× (last: ${task.rejectionReason})`,
    });
  if (task.claimedAt > 0n) entries.push({ state: "CLAIMED", at: ms(task.claimedAt), detail: `by ${task.cellId}` });
  if (task.startedAt > 0n) entries.push({ state: "RUNNING", at: ms(task.startedAt) });
  const completedAt = task.completedAt > 0n ? task.completedAt : task.firstCompletedAt;
  if (completedAt > 0n)
    entries.push({
      state: "COMPLETED",
      at: ms(completedAt),
      detail: task.failed ? `failed: ${task.failureReason}` : "succeeded",
    });
  if (task.state === TaskState.RESOLVING) entries.push({ state: "RESOLVING", at: ms(task.updatedAt) });
  return entries.sort((a, b) => a.at - b.at);
}

export interface TaskFilter {
  domain?: string;
  state?: TaskState;
  cellId?: string;
  labels: Record<string, string>;
}

/** The filter of a tasks query (`?domain=&state=&cell=&label=k=v`); an unknown state is an error naming it. */
export function parseFilter(query: URLSearchParams): TaskFilter | { error: string } {
  const labels: Record<string, string> = {};
  for (const pair of query.getAll("label")) {
    if (!pair) continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) return { error: `label ${JSON.stringify(pair)} must be key=value` };
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const stateName = query.get("state") ?? "";
  let state: TaskState | undefined;
  if (stateName) {
    state = TaskState[stateName as keyof typeof TaskState];
    if (state === undefined || state === TaskState.INVALID)
      return {
        error: `state ${JSON.stringify(stateName)} is not one of PENDING, CLAIMED, RUNNING, COMPLETED, RESOLVING`,
      };
  }
  return {
    domain: query.get("domain") || undefined,
    state,
    cellId: query.get("cell") || undefined,
    labels,
  };
}

export const STATES = ["PENDING", "CLAIMED", "RUNNING", "COMPLETED", "RESOLVING"] as const;

export function countByState(tasks: Task[]): Record<(typeof STATES)[number], number> {
  const counts = { PENDING: 0, CLAIMED: 0, RUNNING: 0, COMPLETED: 0, RESOLVING: 0 };
  for (const t of tasks) {
    const name = TaskState[t.state] as keyof typeof counts;
    if (name in counts) counts[name] += 1;
  }
  return counts;
}

/** Newest first (by created_at, then guid for a stable order). */
export function newestFirst(tasks: Task[]): Task[] {
  return [...tasks].sort((a, b) =>
    a.createdAt === b.createdAt ? a.taskGuid.localeCompare(b.taskGuid) : a.createdAt > b.createdAt ? -1 : 1,
  );
}

/** One page of an ordered list: `offset` from the page token; the next token is empty on the last page. */
export function page<T>(items: T[], token: string, size: number): { items: T[]; next: string } {
  const offset = /^\d+$/.test(token) ? Number(token) : 0;
  const end = offset + size;
  return { items: items.slice(offset, end), next: end < items.length ? String(end) : "" };
}

/** Tasks a placement refused (rejected, or failed as not placeable), most recent first. */
export function placementFailures(tasks: Task[], limit: number): JsonObject[] {
  return tasks
    .filter((t) => t.rejectionReason !== "" || (t.failed && t.cellId === "" && t.claimedAt === 0n))
    .sort((a, b) => (a.updatedAt > b.updatedAt ? -1 : a.updatedAt < b.updatedAt ? 1 : 0))
    .slice(0, limit)
    .map((t) => ({
      task_guid: t.taskGuid,
      domain: t.domain,
      state: TaskState[t.state],
      reason: t.failed && t.claimedAt === 0n ? t.failureReason : t.rejectionReason,
      rejection_count: t.rejectionCount,
      at: ms(t.updatedAt),
    }));
}

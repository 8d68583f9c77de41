import { LABEL_POOL } from "../runtime/pool-plan.js";

/** Labels on every container this cell makes; they say which cell and task it belongs to. */
export const LABEL_MANAGED = "diego.managed-by";
export const LABEL_CELL = "diego.cell-id";
export const LABEL_TASK = "diego.task-guid";
export const MANAGED_BY = "diego-cell";

export function containerLabels(cellId: string, taskGuid: string): Record<string, string> {
  return { [LABEL_MANAGED]: MANAGED_BY, [LABEL_CELL]: cellId, [LABEL_TASK]: taskGuid };
}

export function cellLabels(cellId: string): Record<string, string> {
  return { [LABEL_MANAGED]: MANAGED_BY, [LABEL_CELL]: cellId };
}

/** The one name a task's container has on this cell, so a repeat cannot make a second one. */
export function containerName(cellId: string, taskGuid: string): string {
  return `diego-${cellId.replace(/[^A-Za-z0-9_.-]/g, "_")}-${taskGuid}`;
}

/**
 * The task a container of this cell belongs to: its task label, or for a pooled container a task
 * claimed (labels are fixed at create) the task's container name it was given; else undefined.
 */
export function taskGuidOf(c: { name: string; labels: Record<string, string> }, cellId: string): string | undefined {
  const label = c.labels[LABEL_TASK];
  if (label) return label;
  if (c.labels[LABEL_POOL] === undefined) return undefined;
  const prefix = containerName(cellId, "");
  return c.name.startsWith(prefix) && c.name.length > prefix.length ? c.name.slice(prefix.length) : undefined;
}

import { FailureReason, isRootFsError, noCompatiblePlacementTags, parseRootFs } from "@diego/models";
import type { CellCapability, TaskRequest } from "./types.js";

/**
 * Compatibility of a task with a cell, in Diego's order of stages: first the stack and root_fs
 * (`docker` needs a cell with a docker provider; `preloaded:NAME` a cell whose `preloaded` provider
 * lists NAME), then the placement tags (R ⊆ T ⊆ R ∪ O).
 *
 * `rootfs`: the cell fails the stack or root_fs stage; `tags`: it passes that but not the tags; `ok`.
 */
export type Compatibility = "rootfs" | "tags" | "ok";

/** What a task's root_fs asks of a cell: a scheme, and for `preloaded` a name. Undefined when unparsable. */
export interface RootFsNeed {
  scheme: string;
  name?: string;
}

export function rootFsNeed(rootFs: string): RootFsNeed | undefined {
  const parsed = parseRootFs(rootFs);
  if (isRootFsError(parsed)) return undefined;
  return parsed.scheme === "preloaded" ? { scheme: "preloaded", name: parsed.name } : { scheme: "docker" };
}

/**
 * A `docker` provider accepts any image; any other provider (`preloaded`) accepts exactly the names it
 * lists.
 */
export function offersRootFs(cell: Pick<CellCapability, "rootfsProviders">, need: RootFsNeed | undefined): boolean {
  if (!need) return false;
  for (const provider of cell.rootfsProviders) {
    if (provider.scheme !== need.scheme) continue;
    if (need.scheme === "docker") return true;
    if (need.name !== undefined && provider.names.includes(need.name)) return true;
  }
  return false;
}

export function offersStack(cell: Pick<CellCapability, "stacks">, stack: string | undefined): boolean {
  return !stack || cell.stacks.includes(stack);
}

/** Diego's rule with required cell tags R, optional cell tags O and task tags T: R ⊆ T and T ⊆ R ∪ O. */
export function placementTagsMatch(
  taskTags: readonly string[],
  required: readonly string[],
  optional: readonly string[],
): boolean {
  for (const r of required) if (!taskTags.includes(r)) return false;
  for (const t of taskTags) if (!required.includes(t) && !optional.includes(t)) return false;
  return true;
}

export function compatibility(
  task: TaskRequest,
  cell: CellCapability,
  need: RootFsNeed | undefined = rootFsNeed(task.rootFs),
): Compatibility {
  if (!offersStack(cell, task.stack) || !offersRootFs(cell, need)) return "rootfs";
  if (!placementTagsMatch(task.placementTags, cell.placementTags, cell.optionalPlacementTags)) return "tags";
  return "ok";
}

/**
 * The reason for a task no cell is compatible with, from the furthest stage any cell reached:
 * `found no compatible cell for required rootfs` when no cell offers its stack and root_fs, else the
 * placement-tag text (`found no compatible cell with placement tag "x"`).
 */
export function incompatibilityReason(task: TaskRequest, furthest: Exclude<Compatibility, "ok">): string {
  return furthest === "rootfs" ? FailureReason.noCompatibleRootfs : noCompatiblePlacementTags(task.placementTags);
}

/** A key shared by tasks that are compatible with exactly the same cells. */
export function compatibilityKey(task: TaskRequest): string {
  const need = rootFsNeed(task.rootFs);
  const rootfs = !need ? `invalid:${task.rootFs}` : need.scheme === "docker" ? "docker" : `${need.scheme}:${need.name}`;
  const tags = [...new Set(task.placementTags)].sort();
  return JSON.stringify([task.stack ?? "", rootfs, tags]);
}

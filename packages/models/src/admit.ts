import {
  FailureReason,
  insufficientResources,
  noCompatiblePlacementTags,
  type ScarceResource,
} from "./failure-reasons.js";
import { isRootFsError, parseRootFs } from "./root-fs.js";

/**
 * The one admission rule: may this task run on this cell, and does it fit there now? The auction asks it of
 * every cell state, the cell asks it again of the work it is given (Perform) and of its own ledger, and every
 * simulation asks it too. The shapes are structural, so the generated protobuf messages (TaskWork, CellState,
 * CellPresence) can be passed as they are. See docs/contract.md (placement) for the texts.
 */

export interface Resources {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

export interface RootFsProvider {
  /** `docker` (any image) or `preloaded` (exactly the listed names). */
  scheme: string;
  names: readonly string[];
}

/** What admission needs to know of a task. */
export interface AdmitTask {
  rootFs: string;
  /** When set, only cells that offer this stack may run the task. */
  stack?: string;
  placementTags: readonly string[];
  /** 0 means no limit and needs no capacity. */
  memoryMb: number;
  /** 0 means no limit and needs no capacity. */
  diskMb: number;
  /** A privileged task runs only on a cell that allows privileged tasks. */
  privileged?: boolean;
}

/** What a cell offers, as far as admission goes. */
export interface AdmitCell {
  stacks: readonly string[];
  rootfsProviders: readonly RootFsProvider[];
  /** Tags a task must name to run here. */
  placementTags: readonly string[];
  /** Tags a task may name and still run here. */
  optionalPlacementTags: readonly string[];
  /** The cell's operator lets it run privileged tasks. */
  allowPrivileged?: boolean;
}

/**
 * Compatibility of a task with a cell, in stage order: first the stack and root_fs (`docker` needs a cell with
 * a docker provider; `preloaded:NAME` a cell whose `preloaded` provider lists NAME), then the placement tags
 * (R ⊆ T ⊆ R ∪ O), then privilege.
 *
 * `rootfs`: the cell fails the stack or root_fs stage; `tags`: it passes that but not the tags;
 * `privileged`: it passes both but does not allow the privileged task; `ok`.
 */
export type Compatibility = "rootfs" | "tags" | "privileged" | "ok";

/** The stages in order: a cell that reached a later one came closer to taking the task. */
export const COMPATIBILITY_STAGES: readonly Compatibility[] = ["rootfs", "tags", "privileged", "ok"];

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

/** A `docker` provider accepts any image; any other provider (`preloaded`) accepts exactly the names it lists. */
export function offersRootFs(cell: Pick<AdmitCell, "rootfsProviders">, need: RootFsNeed | undefined): boolean {
  if (!need) return false;
  for (const provider of cell.rootfsProviders) {
    if (provider.scheme !== need.scheme) continue;
    if (need.scheme === "docker") return true;
    if (need.name !== undefined && provider.names.includes(need.name)) return true;
  }
  return false;
}

export function offersStack(cell: Pick<AdmitCell, "stacks">, stack: string | undefined): boolean {
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

/** `need` may be given when many cells are judged for one task (it parses the root_fs once). */
export function compatibility(
  task: AdmitTask,
  cell: AdmitCell,
  need: RootFsNeed | undefined = rootFsNeed(task.rootFs),
): Compatibility {
  if (!offersStack(cell, task.stack) || !offersRootFs(cell, need)) return "rootfs";
  if (!placementTagsMatch(task.placementTags, cell.placementTags, cell.optionalPlacementTags)) return "tags";
  if (task.privileged && !cell.allowPrivileged) return "privileged";
  return "ok";
}

/**
 * The reason for a task no cell is compatible with, from the furthest stage any cell reached:
 * `found no compatible cell for required rootfs` when no cell offers its stack and root_fs, the placement-tag
 * text (`found no compatible cell with placement tag "x"`) when none matches its tags, else the privilege text.
 */
export function incompatibilityReason(
  task: Pick<AdmitTask, "placementTags">,
  furthest: Exclude<Compatibility, "ok">,
): string {
  if (furthest === "rootfs") return FailureReason.noCompatibleRootfs;
  if (furthest === "tags") return noCompatiblePlacementTags(task.placementTags);
  return FailureReason.noPrivilegedCell;
}

/** A key shared by tasks that are compatible with exactly the same cells. */
export function compatibilityKey(task: AdmitTask): string {
  const need = rootFsNeed(task.rootFs);
  const rootfs = !need ? `invalid:${task.rootFs}` : need.scheme === "docker" ? "docker" : `${need.scheme}:${need.name}`;
  const tags = [...new Set(task.placementTags)].sort();
  return JSON.stringify([task.stack ?? "", rootfs, tags, !!task.privileged]);
}

/** What a task takes from a cell: its memory_mb and disk_mb (0 = no limit, takes nothing) and one container. */
export function demand(task: Pick<AdmitTask, "memoryMb" | "diskMb">): Resources {
  return { memoryMb: Math.max(0, task.memoryMb | 0), diskMb: Math.max(0, task.diskMb | 0), containers: 1 };
}

/** The resources of `capacity` that are too small for the task, in the order of the failure text. */
export function shortages(
  task: Pick<AdmitTask, "memoryMb" | "diskMb">,
  capacity: Resources | undefined,
): ScarceResource[] {
  const need = demand(task);
  const have = capacity ?? { memoryMb: 0, diskMb: 0, containers: 0 };
  const out: ScarceResource[] = [];
  if (have.containers < need.containers) out.push("containers");
  if (have.diskMb < need.diskMb) out.push("disk");
  if (have.memoryMb < need.memoryMb) out.push("memory");
  return out;
}

/** True when the task's memory, disk and one container fit in `capacity`. */
export function fits(task: Pick<AdmitTask, "memoryMb" | "diskMb">, capacity: Resources | undefined): boolean {
  return shortages(task, capacity).length === 0;
}

/** A draining cell refuses all new work with this reason (its own words, not a placement text). */
export const DRAINING_REASON = "cell is draining";

/** The verdict of admit(): admitted, or the stage that refused and its failure text. */
export type Admission =
  | { admitted: true }
  | { admitted: false; stage: Exclude<Compatibility, "ok">; reason: string }
  | { admitted: false; stage: "capacity"; reason: string; shortages: ScarceResource[] };

/**
 * May `task` run on `cell` now: compatibility first (stack, root_fs, placement tags, privilege), then fit in
 * `available` (memory, disk, one container). The reason is the failure text a placement failure carries.
 */
export function admit(task: AdmitTask, cell: AdmitCell & { available?: Resources | undefined }): Admission {
  const verdict = compatible(task, cell);
  return verdict.admitted ? fit(task, cell.available) : verdict;
}

/** The compatibility half of admit(): stack, root_fs, placement tags and privilege, whatever is free. */
export function compatible(task: AdmitTask, cell: AdmitCell): Admission {
  const stage = compatibility(task, cell);
  return stage === "ok" ? { admitted: true } : { admitted: false, stage, reason: incompatibilityReason(task, stage) };
}

/** The capacity half of admit(): does the task's memory, disk and one container fit in `available`. */
export function fit(task: Pick<AdmitTask, "memoryMb" | "diskMb">, available: Resources | undefined): Admission {
  const short = shortages(task, available);
  if (short.length)
    return { admitted: false, stage: "capacity", reason: insufficientResources(short), shortages: short };
  return { admitted: true };
}

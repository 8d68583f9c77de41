import {
  COMPATIBILITY_STAGES,
  compatibility,
  compatibilityKey,
  demand,
  FailureReason,
  incompatibilityReason,
  insufficientResources,
  rootFsNeed,
  type Compatibility,
  type ScarceResource,
} from "@diego/models";
import { CellHeap } from "./cell-heap.js";
import { orderBatch } from "./order.js";
import { DEFAULT_STARTING_CONTAINER_WEIGHT, inverse, loadScore, taskShare } from "./score.js";
import type {
  CellCapability,
  CellPlacement,
  CellSnapshot,
  PlacementFailure,
  ScheduleOptions,
  ScheduleResult,
  TaskRequest,
} from "./types.js";

/**
 * Places a batch of tasks on cells: a pure function of (tasks, cell states, options).
 *
 * Tasks go largest first. For each task: the cells compatible with its stack, root_fs and placement
 * tags; of those, the ones with room for its memory, disk and one container; of those, the one with the
 * lowest Diego score (see score.ts); ties go to the cell that was less loaded before the task, then to the
 * first cell id. The winner's capacity is reserved on an in-memory copy, so later tasks of the batch see
 * it. A task with no winner gets the reason of docs/contract.md (failure reasons), and whether that is permanent.
 *
 * Cells are deduplicated by cell id (the first state wins) and visited in cell id order; tasks are
 * deduplicated by task guid (the first request wins). The input is not modified.
 *
 * Speed: tasks compatible with the same cells share a heap of those cells ordered by the task-independent
 * part of the score; a task's search walks the heap from the top and skips every subtree whose best
 * possible score (its top's load + the smallest share this task could take of any cell) cannot beat the
 * best found so far. For equal cells this visits O(1) cells per task, so it is O(tasks × log cells).
 */
export function schedule<T extends TaskRequest>(
  tasks: readonly T[],
  cells: readonly CellSnapshot[],
  options: ScheduleOptions = {},
): ScheduleResult<T> {
  const batch = orderBatch(tasks);
  const fleet = new Fleet(uniqueCells(cells), options.startingContainerWeight ?? DEFAULT_STARTING_CONTAINER_WEIGHT);
  const unreachable = options.unreachableCells ?? [];
  const classes = new Map<string, CellClass>();
  const assigned: T[][] = [];
  const failures: PlacementFailure<T>[] = [];

  const keys = new Map<string, string>();
  for (const task of batch) {
    // compatibilityKey parses the root_fs and sorts the tags: done once per distinct raw combination.
    const raw = rawCompatibility(task);
    let key = keys.get(raw);
    if (key === undefined) keys.set(raw, (key = compatibilityKey(task)));
    let cls = classes.get(key);
    if (!cls) {
      cls = new CellClass(fleet, task, unreachable);
      classes.set(key, cls);
    }
    const failure = cls.incompatible(task);
    if (failure) {
      failures.push({ task, ...failure });
      continue;
    }
    const cell = cls.pick(task, options.excludedCells?.get(task.taskGuid));
    if (cell >= 0) {
      fleet.reserve(cell, task);
      (assigned[cell] ??= []).push(task);
      continue;
    }
    failures.push({ task, ...cls.insufficient(task) });
  }

  const placements: CellPlacement<T>[] = [];
  for (let i = 0; i < fleet.count; i++) {
    const list = assigned[i];
    if (list) placements.push({ cellId: fleet.cells[i].cellId, tasks: list });
  }
  return { placements, failures };
}

/** The fields compatibilityKey reads, as they are (equal raw strings give equal keys). Pure. */
function rawCompatibility(task: TaskRequest): string {
  return JSON.stringify([task.stack ?? "", task.rootFs, !!task.privileged, task.placementTags]);
}

function uniqueCells(cells: readonly CellSnapshot[]): CellSnapshot[] {
  const byId = new Map<string, CellSnapshot>();
  for (const cell of cells) if (!byId.has(cell.cellId)) byId.set(cell.cellId, cell);
  return [...byId.values()].sort((a, b) => (a.cellId < b.cellId ? -1 : a.cellId > b.cellId ? 1 : 0));
}

/** The in-memory copy of the cells' capacity that a batch reserves on, as flat arrays. */
class Fleet {
  readonly count: number;
  readonly availMemory: Float64Array;
  readonly availDisk: Float64Array;
  readonly availContainers: Float64Array;
  readonly totalMemory: Float64Array;
  readonly totalDisk: Float64Array;
  readonly totalContainers: Float64Array;
  readonly invMemory: Float64Array;
  readonly invDisk: Float64Array;
  readonly invContainers: Float64Array;
  readonly taskCount: Int32Array;
  readonly starting: Int32Array;
  /** loadScore of each cell: the score without the task's share. */
  readonly load: Float64Array;
  readonly heaps: CellHeap[] = [];
  readonly classes: CellClass[] = [];
  /** Scratch stack for heap walks. */
  readonly stack: Int32Array;

  constructor(
    readonly cells: readonly CellSnapshot[],
    private readonly weight: number,
  ) {
    const n = (this.count = cells.length);
    this.availMemory = new Float64Array(n);
    this.availDisk = new Float64Array(n);
    this.availContainers = new Float64Array(n);
    this.totalMemory = new Float64Array(n);
    this.totalDisk = new Float64Array(n);
    this.totalContainers = new Float64Array(n);
    this.invMemory = new Float64Array(n);
    this.invDisk = new Float64Array(n);
    this.invContainers = new Float64Array(n);
    this.taskCount = new Int32Array(n);
    this.starting = new Int32Array(n);
    this.load = new Float64Array(n);
    this.stack = new Int32Array(n + 2);
    cells.forEach((cell, i) => {
      this.availMemory[i] = cell.available?.memoryMb ?? 0;
      this.availDisk[i] = cell.available?.diskMb ?? 0;
      this.availContainers[i] = cell.available?.containers ?? 0;
      this.totalMemory[i] = cell.total?.memoryMb ?? 0;
      this.totalDisk[i] = cell.total?.diskMb ?? 0;
      this.totalContainers[i] = cell.total?.containers ?? 0;
      this.invMemory[i] = inverse(this.totalMemory[i]);
      this.invDisk[i] = inverse(this.totalDisk[i]);
      this.invContainers[i] = inverse(this.totalContainers[i]);
      this.taskCount[i] = cell.tasks.length;
      this.starting[i] = cell.startingContainerCount;
      this.updateLoad(i);
    });
  }

  fits(cell: number, memory: number, disk: number): boolean {
    return this.availContainers[cell] >= 1 && this.availMemory[cell] >= memory && this.availDisk[cell] >= disk;
  }

  reserve(cell: number, task: TaskRequest): void {
    const need = demand(task);
    this.availMemory[cell] -= need.memoryMb;
    this.availDisk[cell] -= need.diskMb;
    this.availContainers[cell] -= 1;
    this.taskCount[cell] += 1;
    this.starting[cell] += 1;
    this.updateLoad(cell);
    const full = this.availContainers[cell] < 1;
    for (const heap of this.heaps) {
      if (!heap.has(cell)) continue;
      if (full) heap.remove(cell);
      else heap.increased(cell);
    }
    for (const cls of this.classes) cls.touched(cell);
  }

  private updateLoad(i: number): void {
    this.load[i] = loadScore(
      this.taskCount[i],
      this.starting[i],
      this.totalMemory[i] - this.availMemory[i],
      this.totalDisk[i] - this.availDisk[i],
      this.totalContainers[i] - this.availContainers[i],
      this.invMemory[i],
      this.invDisk[i],
      this.invContainers[i],
      this.weight,
    );
  }
}

type Verdict = Omit<PlacementFailure, "task">;

/** The cells compatible with one kind of task (same stack, root_fs and tags), with its search heap. */
class CellClass {
  private readonly compatible: number[] = [];
  private readonly member: Uint8Array;
  private readonly heap: CellHeap;
  /** The furthest compatibility stage reached by any answering cell / by any live cell. */
  private readonly furthestAnswering: Compatibility;
  private readonly furthestLive: Compatibility;
  /** Compatible cells that gave no state this round. */
  private readonly unreachableCompatible: CellCapability[] = [];
  private readonly liveCells: number;
  /** Smallest 1/total of each resource over the compatible cells: a lower bound of any task's share. */
  private minInvMemory = Infinity;
  private minInvDisk = Infinity;
  private minInvContainers = Infinity;
  /** Largest availability of each resource over the compatible cells; stale values are upper bounds. */
  private maxMemory = 0;
  private maxDisk = 0;
  private maxContainers = 0;
  private stale = false;
  private readonly everFits = new Map<string, Verdict | null>();

  constructor(
    private readonly fleet: Fleet,
    sample: TaskRequest,
    unreachable: readonly CellCapability[],
  ) {
    const need = rootFsNeed(sample.rootFs);
    const rank = (c: Compatibility) => COMPATIBILITY_STAGES.indexOf(c);
    let furthest: Compatibility = "rootfs";
    this.member = new Uint8Array(fleet.count);
    fleet.cells.forEach((cell, i) => {
      const c = compatibility(sample, cell, need);
      if (rank(c) > rank(furthest)) furthest = c;
      if (c !== "ok") return;
      this.compatible.push(i);
      this.member[i] = 1;
      this.minInvMemory = Math.min(this.minInvMemory, fleet.invMemory[i]);
      this.minInvDisk = Math.min(this.minInvDisk, fleet.invDisk[i]);
      this.minInvContainers = Math.min(this.minInvContainers, fleet.invContainers[i]);
    });
    this.furthestAnswering = furthest;
    for (const cell of unreachable) {
      const c = compatibility(sample, cell, need);
      if (rank(c) > rank(furthest)) furthest = c;
      if (c === "ok") this.unreachableCompatible.push(cell);
    }
    this.furthestLive = furthest;
    this.liveCells = fleet.count + unreachable.length;
    this.refreshMaxima();
    this.heap = new CellHeap(
      fleet.load,
      fleet.count,
      this.compatible.filter((i) => fleet.availContainers[i] >= 1),
    );
    fleet.heaps.push(this.heap);
    fleet.classes.push(this);
  }

  touched(cell: number): void {
    if (this.member[cell]) this.stale = true;
  }

  /** The failure of a task no answering cell is compatible with, or undefined when some cell is. */
  incompatible(task: TaskRequest): Verdict | undefined {
    if (this.compatible.length > 0) return undefined;
    if (this.liveCells === 0)
      return { reason: FailureReason.unableToCommunicate, cause: "unreachable", permanent: false };
    if (this.unreachableCompatible.length > 0) {
      // Only cells that did not answer could run it: wait for them.
      return this.fleet.count === 0
        ? { reason: FailureReason.unableToCommunicate, cause: "unreachable", permanent: false }
        : {
            reason: incompatibilityReason(task, this.furthestAnswering as Exclude<Compatibility, "ok">),
            cause: "incompatible",
            permanent: false,
          };
    }
    return {
      reason: incompatibilityReason(task, this.furthestLive as Exclude<Compatibility, "ok">),
      cause: "incompatible",
      permanent: true,
    };
  }

  /** The best cell for the task (index into the fleet), or -1 when no compatible cell has room. */
  pick(task: TaskRequest, excluded: ReadonlySet<string> | undefined): number {
    const need = demand(task);
    const memory = need.memoryMb;
    const disk = need.diskMb;
    // Stale maxima are upper bounds (availability only shrinks during a batch): a cheap early "no".
    if (memory > this.maxMemory || disk > this.maxDisk || this.maxContainers < 1) return -1;
    const { fleet, heap } = this;
    const load = fleet.load;
    const items = heap.items;
    const size = heap.size;
    const bound = taskShare(memory, disk, this.minInvMemory, this.minInvDisk, this.minInvContainers);
    const stack = fleet.stack;
    let top = 0;
    if (size > 0) stack[top++] = 0;
    let best = Infinity;
    let bestLoad = Infinity;
    let bestCell = -1;
    while (top > 0) {
      const p = stack[--top];
      const cell = items[p];
      const k = load[cell];
      const floor = k + bound;
      // Nothing below p can score under `floor`, and on a tie everything below p orders after p.
      if (floor > best || (floor === best && (k > bestLoad || (k === bestLoad && cell > bestCell)))) continue;
      if (fleet.fits(cell, memory, disk) && !(excluded && excluded.has(fleet.cells[cell].cellId))) {
        const s = k + taskShare(memory, disk, fleet.invMemory[cell], fleet.invDisk[cell], fleet.invContainers[cell]);
        if (s < best || (s === best && (k < bestLoad || (k === bestLoad && cell < bestCell)))) {
          best = s;
          bestLoad = k;
          bestCell = cell;
        }
      }
      const child = 2 * p + 1;
      if (child + 1 < size) stack[top++] = child + 1;
      if (child < size) stack[top++] = child;
    }
    return bestCell;
  }

  /** The failure of a compatible task that found no room: permanent when it exceeds every compatible cell's total. */
  insufficient(task: TaskRequest): Verdict {
    const need = demand(task);
    const key = `${need.memoryMb}/${need.diskMb}`;
    let never = this.everFits.get(key);
    if (never === undefined) {
      never = this.neverFits(need.memoryMb, need.diskMb);
      this.everFits.set(key, never);
    }
    if (never) return never;
    if (this.stale) this.refreshMaxima();
    const missing: ScarceResource[] = [];
    if (this.maxContainers < 1) missing.push("containers");
    if (this.maxDisk < need.diskMb) missing.push("disk");
    if (this.maxMemory < need.memoryMb) missing.push("memory");
    return { reason: insufficientResources(missing), cause: "insufficient", permanent: false };
  }

  /** The permanent failure when no compatible live cell's total capacity holds the task, else null. */
  private neverFits(memory: number, disk: number): Verdict | null {
    const totals: { memoryMb: number; diskMb: number; containers: number }[] = this.compatible.map((i) => ({
      memoryMb: this.fleet.totalMemory[i],
      diskMb: this.fleet.totalDisk[i],
      containers: this.fleet.totalContainers[i],
    }));
    for (const cell of this.unreachableCompatible) totals.push(cell.total ?? { memoryMb: 0, diskMb: 0, containers: 0 });
    let memoryShort = true;
    let diskShort = true;
    let containersShort = true;
    for (const t of totals) {
      const m = t.memoryMb >= memory;
      const d = t.diskMb >= disk;
      const c = t.containers >= 1;
      if (m && d && c) return null;
      if (m) memoryShort = false;
      if (d) diskShort = false;
      if (c) containersShort = false;
    }
    const missing: ScarceResource[] = [];
    if (containersShort) missing.push("containers");
    if (diskShort) missing.push("disk");
    if (memoryShort) missing.push("memory");
    return { reason: insufficientResources(missing), cause: "insufficient", permanent: true };
  }

  private refreshMaxima(): void {
    let memory = 0;
    let disk = 0;
    let containers = 0;
    for (const i of this.compatible) {
      if (this.fleet.availMemory[i] > memory) memory = this.fleet.availMemory[i];
      if (this.fleet.availDisk[i] > disk) disk = this.fleet.availDisk[i];
      if (this.fleet.availContainers[i] > containers) containers = this.fleet.availContainers[i];
    }
    this.maxMemory = memory;
    this.maxDisk = disk;
    this.maxContainers = containers;
    this.stale = false;
  }
}

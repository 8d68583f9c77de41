import { admit, demand, DRAINING_REASON } from "@diego/models";
import type { cellv1 } from "@diego/proto";
import { schedule } from "@diego/auction";
import type { CellSnapshot, Resources, ScheduleOptions, ScheduleResult, TaskRequest } from "@diego/auction";

/** A root_fs provider as a simulated cell reports it (mutable arrays, like a protobuf message). */
export interface SimulatedRootFsProvider {
  scheme: string;
  names: string[];
}

/**
 * Simulated cells: the capacity bookkeeping of a cell's rep without containers, for the
 * benchmark (many cells in one process). A simulated cell answers State like a real one and takes
 * Perform work the way a real one does: it refuses what is incompatible or does not fit its free
 * capacity, and treats a guid it already holds as done (Perform is idempotent).
 */
export interface SimulatedCellConfig {
  cellId: string;
  zone?: string;
  stacks?: string[];
  rootfsProviders?: SimulatedRootFsProvider[];
  placementTags?: string[];
  optionalPlacementTags?: string[];
  allowPrivileged?: boolean;
  total: Resources;
}

/** A task a simulated cell holds: a diego.cell.v1.TaskWork. */
export type SimulatedTask = Omit<cellv1.TaskWork, "$typeName" | "$unknown">;

/** A cell state shaped like diego.cell.v1.CellState (usable as its init). */
export interface SimulatedCellState extends CellSnapshot {
  cellId: string;
  zone: string;
  stacks: string[];
  rootfsProviders: SimulatedRootFsProvider[];
  placementTags: string[];
  optionalPlacementTags: string[];
  total: Resources;
  available: Resources;
  tasks: SimulatedTask[];
  startingContainerCount: number;
  draining: boolean;
}

export interface RefusedWork {
  taskGuid: string;
  reason: string;
}

export class SimulatedCell {
  readonly config: Required<SimulatedCellConfig>;
  private readonly held = new Map<string, { task: SimulatedTask; running: boolean }>();
  private readonly free: Resources;
  draining = false;

  constructor(config: SimulatedCellConfig) {
    this.config = {
      zone: "z1",
      stacks: [],
      rootfsProviders: [{ scheme: "docker", names: [] }],
      placementTags: [],
      optionalPlacementTags: [],
      allowPrivileged: false,
      ...config,
    };
    this.free = { ...config.total };
  }

  get cellId(): string {
    return this.config.cellId;
  }

  get taskGuids(): string[] {
    return [...this.held.keys()];
  }

  has(taskGuid: string): boolean {
    return this.held.has(taskGuid);
  }

  state(): SimulatedCellState {
    let starting = 0;
    for (const h of this.held.values()) if (!h.running) starting++;
    return {
      cellId: this.config.cellId,
      zone: this.config.zone,
      stacks: [...this.config.stacks],
      rootfsProviders: this.config.rootfsProviders.map((p) => ({ scheme: p.scheme, names: [...p.names] })),
      placementTags: [...this.config.placementTags],
      optionalPlacementTags: [...this.config.optionalPlacementTags],
      allowPrivileged: this.config.allowPrivileged,
      total: { ...this.config.total },
      available: { ...this.free },
      tasks: [...this.held.values()].map((h) => h.task),
      startingContainerCount: starting,
      draining: this.draining,
    };
  }

  /** Reserves capacity for each task it can run; returns the ones it refuses, with its reason. */
  perform(tasks: readonly TaskRequest[]): RefusedWork[] {
    const refused: RefusedWork[] = [];
    for (const task of tasks) {
      if (this.held.has(task.taskGuid)) continue;
      const admission = this.draining ? undefined : admit(task, { ...this.config, available: this.free });
      if (!admission?.admitted) {
        refused.push({ taskGuid: task.taskGuid, reason: admission?.reason ?? DRAINING_REASON });
        continue;
      }
      const need = demand(task);
      this.free.memoryMb -= need.memoryMb;
      this.free.diskMb -= need.diskMb;
      this.free.containers -= 1;
      this.held.set(task.taskGuid, { task: toSimulatedTask(task), running: false });
    }
    return refused;
  }

  /** The container of a held task started (it no longer counts as starting). */
  start(taskGuid: string): void {
    const h = this.held.get(taskGuid);
    if (h) h.running = true;
  }

  /** The task's container is gone: its capacity comes back. */
  remove(taskGuid: string): boolean {
    const h = this.held.get(taskGuid);
    if (!h) return false;
    const need = demand(h.task);
    this.free.memoryMb += need.memoryMb;
    this.free.diskMb += need.diskMb;
    this.free.containers += 1;
    this.held.delete(taskGuid);
    return true;
  }
}

function toSimulatedTask(task: TaskRequest & { domain?: string; maxPids?: number }): SimulatedTask {
  return {
    taskGuid: task.taskGuid,
    domain: task.domain ?? "",
    rootFs: task.rootFs,
    stack: task.stack ?? "",
    placementTags: [...task.placementTags],
    memoryMb: task.memoryMb,
    diskMb: task.diskMb,
    maxPids: task.maxPids ?? 0,
    privileged: !!task.privileged,
  };
}

/** `count` cells named `<prefix>-0001`… made from one template. */
export function simulatedFleet(
  count: number,
  template: Omit<SimulatedCellConfig, "cellId">,
  prefix = "sim-cell",
): SimulatedCell[] {
  const width = String(count).length;
  return Array.from(
    { length: count },
    (_, i) => new SimulatedCell({ ...template, cellId: `${prefix}-${String(i + 1).padStart(width, "0")}` }),
  );
}

export interface SimulatedAuction<T extends TaskRequest> {
  result: ScheduleResult<T>;
  /** Work the cells refused at Perform (none unless the schedule was wrong). */
  refused: RefusedWork[];
}

/** One auction entirely in memory: states from the cells, schedule, Perform on each cell. */
export function simulateAuction<T extends TaskRequest>(
  cells: readonly SimulatedCell[],
  tasks: readonly T[],
  options: ScheduleOptions = {},
): SimulatedAuction<T> {
  const live = cells.filter((c) => !c.draining);
  const result = schedule(
    tasks,
    live.map((c) => c.state()),
    options,
  );
  const byId = new Map(cells.map((c) => [c.cellId, c]));
  const refused: RefusedWork[] = [];
  for (const placement of result.placements) refused.push(...byId.get(placement.cellId)!.perform(placement.tasks));
  return { result, refused };
}

/** Figures of how work is spread over cells: tasks per cell and the share of capacity reserved. */
export function fleetFigures(cells: readonly SimulatedCell[]) {
  const counts = cells.map((c) => c.taskGuids.length);
  let totalMemory = 0;
  let usedMemory = 0;
  let totalDisk = 0;
  let usedDisk = 0;
  let totalContainers = 0;
  let usedContainers = 0;
  for (const c of cells) {
    const s = c.state();
    totalMemory += s.total.memoryMb;
    usedMemory += s.total.memoryMb - s.available.memoryMb;
    totalDisk += s.total.diskMb;
    usedDisk += s.total.diskMb - s.available.diskMb;
    totalContainers += s.total.containers;
    usedContainers += s.total.containers - s.available.containers;
  }
  return {
    tasks: counts.reduce((a, b) => a + b, 0),
    minPerCell: Math.min(...counts),
    maxPerCell: Math.max(...counts),
    memoryUsed: totalMemory ? usedMemory / totalMemory : 0,
    diskUsed: totalDisk ? usedDisk / totalDisk : 0,
    containersUsed: totalContainers ? usedContainers / totalContainers : 0,
  };
}

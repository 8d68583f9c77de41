/**
 * The container pool's decisions as values (docs/performance.md, "The container pool"): which task
 * can take a pooled container, which shapes are kept, what to create and evict, which container a
 * claim takes, and whether the limits a container reports are exactly the task's. No I/O here.
 */
import type { ContainerSpec } from "./container-runtime.js";

/** Label on every pooled container: its shape's key. Claimed ones keep it (labels are fixed at create). */
export const LABEL_POOL = "diego.pool-shape";

/** What is fixed when a container is created and the same for every task of it. */
export interface PoolShape {
  image: string;
  /**
   * The id the image reference named for the tasks of this shape ("" = not known): when a new tag or
   * pull moves the reference, its tasks are of a new shape, and the old shape's containers go unused.
   */
  imageId: string;
  /** The disk quota (0 = none): fixed at create. */
  diskMb: number;
  privileged: boolean;
  network: boolean;
}

export interface PoolSettings {
  /** Ready containers kept per shape. */
  size: number;
  /** Most shapes kept at once (the most recently used). */
  maxShapes: number;
  /** A shape no task used for this long is dropped (its containers removed). */
  shapeIdleMs: number;
}

export interface PooledContainer {
  /** Empty while it is being created. */
  id: string;
  key: string;
  state: "creating" | "ready";
  /** The limits it was created with. */
  limits: ContainerLimits;
  /** A claim waits for it while it is being created: no other claim takes it. */
  promised?: boolean;
}

/** A shape tasks asked for: when last, and the limits the last one wanted (new containers get them). */
export interface ShapeUse {
  shape: PoolShape;
  lastUsed: number;
  limits: ContainerLimits;
}

export interface PoolState {
  /** Shape key → the shape and its last use. */
  shapes: ReadonlyMap<string, ShapeUse>;
  containers: readonly PooledContainer[];
}

export interface PoolPlan {
  /** Shapes to create one more container of (one entry per container). */
  create: PoolShape[];
  /** Ready containers to remove: of shapes no longer kept. */
  evict: string[];
  /** Shapes to forget (idle, or past max shapes) once their containers are gone. */
  forget: string[];
}

export function shapeKey(s: PoolShape): string {
  return `${s.image}|id=${s.imageId}|disk=${s.diskMb}|priv=${s.privileged ? 1 : 0}|net=${s.network ? 1 : 0}`;
}

/**
 * The shape of a task's container. Every task can take a pooled container: one with env gets it in each
 * of its processes instead of at create (ExecSpec.createEnv).
 */
export function shapeOf(spec: ContainerSpec): PoolShape {
  return {
    image: spec.image,
    imageId: spec.imageId ?? "",
    diskMb: spec.diskMb,
    privileged: spec.privileged,
    network: spec.network,
  };
}

/** The shapes kept: used within shapeIdleMs, the maxShapes most recently used. */
export function keptShapes(state: PoolState, settings: PoolSettings, now: number): Set<string> {
  if (settings.size <= 0 || settings.maxShapes <= 0) return new Set();
  const recent = [...state.shapes]
    .filter(([, s]) => now - s.lastUsed <= settings.shapeIdleMs)
    .sort((a, b) => b[1].lastUsed - a[1].lastUsed || (a[0] < b[0] ? -1 : 1))
    .slice(0, settings.maxShapes);
  return new Set(recent.map(([key]) => key));
}

/**
 * What to do now: fill every kept shape up to `size`, remove the ready containers of the others, and
 * those of a kept shape that its last task's limits could not be given (see updatable): they are
 * replaced by containers made with those limits.
 */
export function planPool(state: PoolState, settings: PoolSettings, now: number): PoolPlan {
  const kept = keptShapes(state, settings, now);
  const stale = (c: PooledContainer) =>
    c.state === "ready" && (!kept.has(c.key) || !updatable(c.limits, state.shapes.get(c.key)!.limits));
  const create: PoolShape[] = [];
  for (const key of kept) {
    const have = state.containers.filter((c) => c.key === key && !stale(c)).length;
    const shape = state.shapes.get(key)!.shape;
    for (let i = have; i < settings.size; i++) create.push(shape);
  }
  const evict = state.containers.filter(stale).map((c) => c.id);
  const forget = [...state.shapes.keys()].filter(
    (key) => !kept.has(key) && !state.containers.some((c) => c.key === key),
  );
  return { create, evict, forget };
}

/** The ready containers of the shape a claim wanting `want` could take: an update can give them those limits. */
export function takeable(
  containers: readonly PooledContainer[],
  key: string,
  want: ContainerLimits,
): PooledContainer[] {
  return containers.filter((c) => c.state === "ready" && claimable(c, key, want));
}

/**
 * A container of the shape being created that a claim wanting `want` finding none ready can wait for
 * instead of creating one more beside it (the oldest, no other claim waiting for it), or undefined.
 */
export function pickComing(
  containers: readonly PooledContainer[],
  key: string,
  want: ContainerLimits,
): PooledContainer | undefined {
  return containers.find((c) => c.state === "creating" && claimable(c, key, want));
}

/** A container of the shape that no claim has yet, which an update can give the limits `want`. */
function claimable(c: PooledContainer, key: string, want: ContainerLimits): boolean {
  return !c.promised && c.key === key && updatable(c.limits, want);
}

/**
 * The ready container of the shape a claim wanting `want` takes: the oldest made with exactly those
 * limits (nothing to update), else the oldest takeable one, else undefined.
 */
export function pickReady(
  containers: readonly PooledContainer[],
  key: string,
  want: ContainerLimits,
): PooledContainer | undefined {
  const ready = takeable(containers, key, want);
  return ready.find((c) => limitMismatches(want, c.limits).length === 0) ?? ready[0];
}

/** The limits Docker holds for a container, as its inspect shows them (0 = none). */
export interface ContainerLimits {
  memory: number;
  memorySwap: number;
  cpuShares: number;
  pidsLimit: number;
}

export const NO_LIMITS: ContainerLimits = { memory: 0, memorySwap: 0, cpuShares: 0, pidsLimit: 0 };

/** An update can give a container with `from` the limits `want`: it cannot take a limit away (0 = keep). */
export function updatable(from: ContainerLimits, want: ContainerLimits): boolean {
  return !(from.memory && !want.memory) && !(from.cpuShares && !want.cpuShares) && !(from.pidsLimit && !want.pidsLimit);
}

/** The limits the create path gives this spec (docker-runtime.ts create), as they read back. */
export function limitsOf(spec: ContainerSpec): ContainerLimits {
  const memory = spec.memoryMb * 1024 * 1024;
  return { memory, memorySwap: memory, cpuShares: spec.cpuShares, pidsLimit: spec.maxPids };
}

/**
 * The update that gives a pooled container created with `from` (see updatable) the limits `want`: the
 * fields that differ; fields left out stay as they are.
 */
export function limitUpdate(
  want: ContainerLimits,
  from: ContainerLimits,
): Partial<Record<"Memory" | "MemorySwap" | "CpuShares" | "PidsLimit", number>> {
  const update: Partial<Record<"Memory" | "MemorySwap" | "CpuShares" | "PidsLimit", number>> = {};
  if (want.memory && (want.memory !== from.memory || want.memorySwap !== from.memorySwap)) {
    update.Memory = want.memory;
    update.MemorySwap = want.memorySwap;
  }
  if (want.cpuShares && want.cpuShares !== from.cpuShares) update.CpuShares = want.cpuShares;
  if (want.pidsLimit && want.pidsLimit !== from.pidsLimit) update.PidsLimit = want.pidsLimit;
  return update;
}

/** The fields whose value read back differs from the one wanted (empty: applied exactly). */
export function limitMismatches(want: ContainerLimits, got: ContainerLimits): string[] {
  return (Object.keys(want) as (keyof ContainerLimits)[]).filter((k) => want[k] !== got[k]);
}

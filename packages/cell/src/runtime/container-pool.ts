/**
 * The container pool's Docker shell (docs/performance.md, "The container pool"): never-used
 * containers, created and started off the tasks' path for the shapes tasks recently asked for; a claim
 * takes one (never twice), names it as the task's container and applies the task's limits before any
 * of its processes start. The decisions are pool-plan.ts's.
 */
import { DiegoError } from "@diego/models";
import type { Logger } from "@diego/kit";
import type { ContainerInfo, ContainerRuntime, ContainerSpec } from "./container-runtime.js";
import { statusCode, engineMessage } from "./docker-errors.js";
import type { DockerRuntime } from "./docker-runtime.js";
import {
  LABEL_POOL,
  limitMismatches,
  limitsOf,
  limitUpdate,
  pickComing,
  pickReady,
  planPool,
  shapeOf,
  takeable,
  shapeKey,
  NO_LIMITS,
  type ContainerLimits,
  type PoolSettings,
  type PoolShape,
  type PooledContainer,
  type ShapeUse,
} from "./pool-plan.js";

/** What the pool needs of the engine: the runtime's create/start/remove/list, and rename, update, read limits. */
export interface PoolEngine extends Pick<ContainerRuntime, "create" | "start" | "remove" | "list"> {
  /** Renames a container; ALREADY_EXISTS when another has the name. */
  rename(id: string, name: string): Promise<void>;
  update(id: string, update: ReturnType<typeof limitUpdate>): Promise<void>;
  /** The limits the engine holds for the container, whether it runs, and the id of its image. */
  limits(id: string): Promise<ContainerLimits & { running: boolean; imageId: string }>;
  /** Set-up every container gets before its first process, done here before the claim (the output directory). */
  prepare?(id: string): Promise<void>;
}

/** The PoolEngine of the Docker runtime: containers are created exactly as a task's are (its create). */
export function dockerPoolEngine(runtime: DockerRuntime): PoolEngine {
  const docker = runtime.docker;
  return {
    create: (spec) => runtime.create(spec),
    start: (id) => runtime.start(id),
    remove: (id) => runtime.remove(id),
    list: (labels) => runtime.list(labels),
    prepare: (id) => runtime.outputRoot(id),
    async rename(id, name) {
      await docker
        .getContainer(id)
        .rename({ name })
        .catch((err: unknown) => {
          if (statusCode(err) === 409) throw new DiegoError("ALREADY_EXISTS", engineMessage(err));
          throw err;
        });
    },
    async update(id, update) {
      await docker.getContainer(id).update(update);
    },
    async limits(id) {
      const info = await runtime.inspect(id);
      const h = info.HostConfig ?? {};
      return {
        memory: h.Memory ?? 0,
        memorySwap: h.MemorySwap ?? 0,
        cpuShares: h.CpuShares ?? 0,
        pidsLimit: h.PidsLimit ?? 0,
        running: info.State?.Running === true,
        imageId: info.Image ?? "",
      };
    },
  };
}

export interface PoolStats {
  ready: number;
  creating: number;
  shapes: number;
  /** Claims that took a pooled container. */
  hits: number;
  /** Poolable claims that found none ready (a new container was made). */
  misses: number;
  /** Pooled containers taken, then removed because they could not be given the task's name and limits. */
  discarded: number;
  created: number;
  createFailures: number;
}

export interface ContainerPoolOptions {
  engine: PoolEngine;
  settings: PoolSettings;
  /** Labels of every pooled container (the cell's), beside LABEL_POOL. */
  labels: Record<string, string>;
  /** Start of a pooled container's name until it is claimed; never the start of a task container's name. */
  namePrefix: string;
  logger: Logger;
  /** Removes a container (default: the engine's). */
  remove?: (id: string) => Promise<void>;
  now?: () => number;
  /** Containers created at once while filling; default 2. */
  fillConcurrency?: number;
  /**
   * After a claim the pool refills once no claim came for this long (default 250 ms), so that its
   * creates do not compete with the claimed task's own start on the engine; at once when the claim
   * took the shape's last ready container.
   */
  quietMs?: number;
}

/** The cell's pool of ready containers; see the module comment. */
export class ContainerPool {
  private readonly shapes = new Map<string, ShapeUse>();
  private containers: PooledContainer[] = [];
  /** Of each container being created: whether it became ready. */
  private readonly coming = new Map<PooledContainer, Promise<boolean>>();
  private readonly counts = { hits: 0, misses: 0, discarded: 0, created: 0, createFailures: 0 };
  private filling?: Promise<void>;
  private again = false;
  private stopped = false;
  private timer?: NodeJS.Timeout;
  private quiet?: NodeJS.Timeout;
  private serial = 0;
  private failuresInARow = 0;
  private readonly now: () => number;

  constructor(private readonly o: ContainerPoolOptions) {
    this.now = o.now ?? Date.now;
  }

  /** Removes the never-claimed pooled containers an earlier run of the cell left (claimed ones are tasks'). */
  async start(): Promise<void> {
    const left = await this.o.engine.list(this.o.labels);
    for (const c of left.filter((c) => this.isUnclaimed(c))) await this.removeQuietly(c.id);
    this.timer = setInterval(() => this.refill(), Math.min(30_000, Math.max(1_000, this.o.settings.shapeIdleMs)));
    this.timer.unref();
  }

  /** A pooled container left unclaimed (its pool name), as a list shows it. */
  isUnclaimed(c: ContainerInfo): boolean {
    return c.labels[LABEL_POOL] !== undefined && c.name.startsWith(this.o.namePrefix);
  }

  /**
   * A ready container standing for a new one of `spec` (named spec.name, with its limits, running, no
   * process of a task ever in it), or undefined: then the caller creates one as usual.
   */
  async claim(spec: ContainerSpec): Promise<string | undefined> {
    if (this.stopped) return undefined;
    const shape = shapeOf(spec);
    const key = shapeKey(shape);
    const want = limitsOf(spec);
    this.shapes.set(key, { shape, lastUsed: this.now(), limits: want });
    let taken = pickReady(this.containers, key, want);
    if (!taken) {
      // One being made would be ready before a new one made now, and the engine makes one fewer.
      const coming = pickComing(this.containers, key, want);
      if (coming) {
        coming.promised = true; // no other claim takes it, now or once it is ready
        // Taken, or gone from the pool (failed, stopped): either way no claim sees it again.
        if ((await this.coming.get(coming)) && this.containers.includes(coming)) taken = coming;
      }
    }
    if (taken) this.containers = this.containers.filter((c) => c !== taken); // taken now: no other claim sees it
    this.refillWhenQuiet(!pickReady(this.containers, key, want));
    if (!taken) {
      this.counts.misses++;
      return undefined;
    }
    try {
      const update = limitUpdate(want, taken.limits);
      // The name and the limits are independent: the read-back runs beside the rename.
      const [, got] = await Promise.all([
        this.renameTo(taken.id, spec.name),
        (async () => {
          if (Object.keys(update).length > 0) await this.o.engine.update(taken.id, update);
          return this.o.engine.limits(taken.id);
        })(),
      ]);
      if (!got.running) throw new Error("the pooled container is not running");
      // Made by reference: if the reference moved before its create, it holds another image than the task's.
      if (shape.imageId && got.imageId !== shape.imageId)
        throw new Error(`its image is ${got.imageId}, not ${shape.imageId} that ${shape.image} names now`);
      const wrong = limitMismatches(want, got);
      if (wrong.length) throw new Error(`its limits read back differ: ${wrong.join(", ")}`);
    } catch (err) {
      this.counts.discarded++;
      this.o.logger.warn(
        { containerId: taken.id, reason: (err as Error).message },
        "pooled container discarded: a new one is made",
      );
      await this.removeQuietly(taken.id);
      return undefined;
    }
    this.counts.hits++;
    return taken.id;
  }

  stats(): PoolStats {
    return {
      ready: this.containers.filter((c) => c.state === "ready").length,
      creating: this.containers.filter((c) => c.state === "creating").length,
      shapes: this.shapes.size,
      ...this.counts,
    };
  }

  /** Ready containers a task of `spec` could take: of its shape, with limits an update can make its own. */
  readyFor(spec: ContainerSpec): number {
    return takeable(this.containers, shapeKey(shapeOf(spec)), limitsOf(spec)).length;
  }

  /** Pooled containers there are (ready or being made): they hold no task capacity. */
  size(): number {
    return this.containers.length;
  }

  /** Stops filling and removes the ready containers (drain). */
  async stop(): Promise<void> {
    this.halt();
    await this.filling;
    const ready = this.containers;
    this.containers = [];
    await Promise.all(ready.map((c) => this.removeQuietly(c.id)));
  }

  /** Stops filling at once; the containers stay (a crash, for tests; the next start removes them). */
  halt(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.quiet);
  }

  private async renameTo(id: string, name: string): Promise<void> {
    try {
      await this.o.engine.rename(id, name);
    } catch (err) {
      if (!DiegoError.is(err, "ALREADY_EXISTS")) throw err;
      // A container of an earlier attempt of this task on this cell: remove it and take the name.
      const stale = (await this.o.engine.list(this.o.labels)).filter((c) => c.name === name);
      for (const c of stale) await this.o.engine.remove(c.id);
      await this.o.engine.rename(id, name);
    }
  }

  private refillWhenQuiet(dry: boolean): void {
    clearTimeout(this.quiet);
    this.quiet = undefined;
    if (dry) return this.refill();
    this.quiet = setTimeout(() => this.refill(), this.o.quietMs ?? 250);
    this.quiet.unref();
  }

  /** Runs the plan until it asks for nothing (one loop at a time; a call during it runs it again). */
  private refill(): void {
    if (this.stopped) return;
    if (this.filling) {
      this.again = true;
      return;
    }
    this.filling = this.fill()
      .catch((err) => this.o.logger.warn({ err }, "container pool: filling failed"))
      .finally(() => {
        this.filling = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.refill();
        }
      });
  }

  private async fill(): Promise<void> {
    while (!this.stopped) {
      this.again = false;
      const plan = planPool({ shapes: this.shapes, containers: this.containers }, this.o.settings, this.now());
      for (const key of plan.forget) this.shapes.delete(key);
      if (plan.evict.length) {
        this.containers = this.containers.filter((c) => !plan.evict.includes(c.id));
        await Promise.all(plan.evict.map((id) => this.removeQuietly(id)));
      }
      const batch = plan.create.slice(0, this.o.fillConcurrency ?? 2);
      if (!batch.length) return;
      await Promise.all(batch.map((shape) => this.createOne(shape)));
      if (this.failuresInARow >= 3) {
        // The engine refuses: try again at the next claim or tick, not in a loop.
        this.failuresInARow = 0;
        return;
      }
    }
  }

  private async createOne(shape: PoolShape): Promise<void> {
    const key = shapeKey(shape);
    // With the limits the shape's last task wanted: a claim wanting the same has nothing to update.
    const limits = this.shapes.get(key)?.limits ?? NO_LIMITS;
    const entry: PooledContainer = { id: "", key, state: "creating", limits };
    this.containers.push(entry);
    const made = this.makeReady(entry, shape, limits);
    this.coming.set(entry, made);
    await made;
    this.coming.delete(entry);
  }

  private async makeReady(entry: PooledContainer, shape: PoolShape, limits: ContainerLimits): Promise<boolean> {
    try {
      entry.id = await this.o.engine.create(this.specOf(shape, limits));
      await this.o.engine.start(entry.id);
      await this.o.engine.prepare?.(entry.id);
      if (this.stopped || !this.containers.includes(entry)) throw new Error("the pool stopped");
      entry.state = "ready";
      this.counts.created++;
      this.failuresInARow = 0;
      return true;
    } catch (err) {
      this.containers = this.containers.filter((c) => c !== entry);
      if (entry.id) await this.removeQuietly(entry.id);
      if (this.stopped) return false;
      this.counts.createFailures++;
      this.failuresInARow++;
      this.o.logger.warn({ reason: (err as Error).message, image: shape.image }, "container pool: cannot create");
      return false;
    }
  }

  /** A task's spec (task-runner.ts) with nothing of a task (no env), `limits`, the pool's name and labels. */
  private specOf(shape: PoolShape, limits: ContainerLimits): ContainerSpec {
    return {
      name: `${this.o.namePrefix}${(this.serial++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`,
      image: shape.image,
      imageId: shape.imageId || undefined,
      labels: { ...this.o.labels, [LABEL_POOL]: shapeKey(shape) },
      env: [],
      memoryMb: limits.memory / (1024 * 1024),
      diskMb: shape.diskMb,
      cpuShares: limits.cpuShares,
      maxPids: limits.pidsLimit,
      privileged: shape.privileged,
      network: shape.network,
    };
  }

  private async removeQuietly(id: string): Promise<void> {
    await (this.o.remove ? this.o.remove(id) : this.o.engine.remove(id)).catch((err: unknown) =>
      this.o.logger.warn({ containerId: id, reason: (err as Error).message }, "container pool: cannot remove"),
    );
  }
}

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  CellPresenceSchema,
  CellRegistryService,
  LogLine_Stream,
  LogLineSchema,
  TaskLifecycleService,
  cellv1,
  type CellPresence,
  type LogLine,
  type Task,
} from "@diego/proto";
import { GrpcServer, createClient, type Logger, type ServiceClient, type TlsFiles } from "@diego/kit";
import { DiegoError, nowNanos, taskNotFound } from "@diego/models";

/** A cell's presence as a test declares it; `address` is left out: it is where the simulated cell listens. */
export type SimulatedCellSpec = Omit<MessageInitShape<typeof CellPresenceSchema>, "address" | "$typeName"> & {
  cellId: string;
};

/** How a simulated task ended, as its cell reports it with CompleteTask. */
export type SimulatedOutcome = Pick<SimulatedRun, "failed" | "failureReason" | "result" | "exitStatus" | "usage">;

/** How the simulated cell runs a task (see TestBbs.autoRun). */
export interface SimulatedRun {
  /** The cell that runs it; default cell-1 (started on first use). */
  cellId?: string;
  /** Output lines, STDOUT unless given as {message, stream: "STDERR"}. */
  logs?: (string | { message: string; stream: "STDOUT" | "STDERR" })[];
  result?: string;
  failed?: boolean;
  failureReason?: string;
  /** The run action's exit status, as a real cell reports it. */
  exitStatus?: number;
  /** What the task used, as a real cell measures it. */
  usage?: { peakMemoryBytes: bigint; cpuTimeNs: bigint };
  /** Pause before each of the steps claim → running → logs → complete; default 20 ms. */
  stepMs?: number;
}

export interface SimulatedCellOptions {
  bbsAddress: string;
  tls?: TlsFiles;
  logger: Logger;
  /** Presence TTL; a heartbeat goes every third of it. Default 10 s. */
  ttlMs?: number;
}

/** A cell most tests can use: it takes docker and preloaded busybox root filesystems and has room. */
export const DEFAULT_CELL: Omit<SimulatedCellSpec, "cellId"> = {
  zone: "z1",
  rootfsProviders: [{ scheme: "docker" }, { scheme: "preloaded", names: ["busybox"] }],
  total: { memoryMb: 4096, diskMb: 8192, containers: 100 },
  available: { memoryMb: 4096, diskMb: 8192, containers: 100 },
};

type Registry = ServiceClient<(typeof CellRegistryService)["method"]>;

/**
 * Keeps one presence alive in the BBS through CellRegistryService, as a cell does: a Heartbeat with
 * ttl_ms every third of the TTL, Deregister on stop.
 */
export class PresenceHeartbeat {
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly registry: Registry,
    private readonly presence: CellPresence,
    private readonly ttlMs: number,
    private readonly logger: Logger,
  ) {}

  /** The first heartbeat must reach the BBS; later ones that fail are logged (the presence expires). */
  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(
      () => {
        this.beat().catch((err: unknown) =>
          this.logger.debug({ err: (err as Error).message, cellId: this.presence.cellId }, "heartbeat failed"),
        );
      },
      Math.floor(this.ttlMs / 3),
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.registry.deregister({ cellId: this.presence.cellId }, { timeoutMs: 2_000 }).catch(() => undefined);
  }

  private async beat(): Promise<void> {
    await this.registry.heartbeat({ cell: this.presence, ttlMs: BigInt(this.ttlMs) }, { timeoutMs: 5_000 });
  }
}

/** What the cell keeps of a task it claimed: its output, and whether the task has ended here. */
class TaskOutput {
  lines: LogLine[] = [];
  ended = false;
  source = "LOG";
  private readonly waiters = new Set<() => void>();

  push(line: LogLine): void {
    this.lines.push(line);
    this.wake();
  }

  end(): void {
    this.ended = true;
    this.wake();
  }

  /** Resolves at the next line, at the end, or when the signal aborts. */
  next(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.waiters.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.waiters.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

/**
 * A cell as the BBS sees one, without containers. It keeps its presence alive with
 * CellRegistryService.Heartbeat, claims, reports running and completes tasks through
 * TaskLifecycleService (StartTask → RunningTask → CompleteTask) as a real cell does, and serves
 * CellRepService on its own port: TaskLogs streams the lines a test gave it (the BBS forwards the
 * clients' TaskLogs here), CancelTask stops a simulated run (the BBS calls it when a client cancels),
 * State reports its presence. Placement is not simulated: Perform refuses, the TestBbs's auctioneer
 * hands work to the cell in-process.
 */
export class SimulatedCell {
  private readonly outputs = new Map<string, TaskOutput>();
  private readonly runs = new Map<string, { stop: AbortController; done: Promise<void> }>();
  private stopped = false;

  private constructor(
    readonly cellId: string,
    readonly address: string,
    readonly presence: CellPresence,
    private readonly server: GrpcServer,
    private readonly lifecycle: ServiceClient<(typeof TaskLifecycleService)["method"]>,
    private readonly registry: Registry,
    private readonly heartbeat: PresenceHeartbeat,
  ) {}

  static async start(spec: SimulatedCellSpec, options: SimulatedCellOptions): Promise<SimulatedCell> {
    const server = new GrpcServer({ logger: options.logger, tls: options.tls });
    let cell: SimulatedCell | undefined;
    const self = () => {
      if (!cell) throw new DiegoError("UNAVAILABLE", `simulated cell ${spec.cellId} is starting`);
      return cell;
    };
    server.add(cellv1.CellRepService, {
      state: () => self().state(),
      perform: (req) => ({
        failed: req.tasks.map((t) => ({
          taskGuid: t.taskGuid,
          reason: "a simulated cell is given its work by the test BBS, not by auction",
        })),
      }),
      cancelTask: (req) => {
        self().stopRun(req.taskGuid);
        return {};
      },
      taskLogs: (req, ctx) => self().taskLogs(req.taskGuid, req.follow, ctx.signal),
    });
    const port = await server.listen("127.0.0.1:0");
    const address = `127.0.0.1:${port}`;
    const clientOptions = { tls: options.tls, defaultTimeoutMs: 10_000 };
    const lifecycle = createClient(TaskLifecycleService, options.bbsAddress, clientOptions);
    const registry = createClient(CellRegistryService, options.bbsAddress, clientOptions);
    const presence = create(CellPresenceSchema, { ...spec, address } as MessageInitShape<typeof CellPresenceSchema>);
    const heartbeat = new PresenceHeartbeat(registry, presence, options.ttlMs ?? 10_000, options.logger);
    cell = new SimulatedCell(spec.cellId, address, presence, server, lifecycle, registry, heartbeat);
    try {
      await heartbeat.start();
    } catch (err) {
      await cell.stop();
      throw err;
    }
    return cell;
  }

  /** True when this cell claimed the task (or tried to). */
  has(taskGuid: string): boolean {
    return this.outputs.has(taskGuid);
  }

  /** StartTask: PENDING → CLAIMED by this cell; returns the full task (image_password included). */
  async claim(taskGuid: string): Promise<Task> {
    // Ready to serve the task's logs before the claim is visible: the BBS forwards TaskLogs at once.
    const known = this.outputs.get(taskGuid);
    const output = known ?? new TaskOutput();
    if (!known) this.outputs.set(taskGuid, output);
    try {
      const { task } = await this.lifecycle.startTask({ taskGuid, cellId: this.cellId });
      if (!task) throw new DiegoError("INTERNAL", `StartTask of ${taskGuid} answered without the task`);
      output.source = task.logSource || "LOG";
      return task;
    } catch (err) {
      if (!known) this.outputs.delete(taskGuid);
      throw err;
    }
  }

  /** RunningTask: CLAIMED → RUNNING on this cell. */
  async running(taskGuid: string): Promise<void> {
    await this.lifecycle.runningTask({ taskGuid, cellId: this.cellId });
  }

  /** CompleteTask from this cell; the task's log stream ends here. */
  async complete(taskGuid: string, outcome: SimulatedOutcome = {}): Promise<void> {
    try {
      await this.lifecycle.completeTask({
        taskGuid,
        cellId: this.cellId,
        failed: outcome.failed ?? false,
        failureReason: outcome.failureReason ?? "",
        result: outcome.result ?? "",
        exitStatus: outcome.exitStatus,
        usage: outcome.usage,
      });
    } finally {
      this.outputs.get(taskGuid)?.end();
    }
  }

  /** A line of the task's output, as its container would have written it. */
  log(taskGuid: string, message: string, stream: "STDOUT" | "STDERR" = "STDOUT"): void {
    const output = this.outputs.get(taskGuid);
    if (!output) throw new Error(`cell ${this.cellId} has not claimed task ${taskGuid}`);
    output.push(
      create(LogLineSchema, {
        timestamp: nowNanos(),
        source: output.source,
        instance: "0",
        stream: stream === "STDERR" ? LogLine_Stream.STDERR : LogLine_Stream.STDOUT,
        message,
      }),
    );
  }

  /**
   * Runs the task as the plan says, pausing `stepMs` before each step: claim, running, the log lines,
   * complete. It stops quietly when a step is refused (the task was cancelled or taken meanwhile), as
   * a real cell would. A second call for a task already running here does nothing.
   */
  run(taskGuid: string, plan: SimulatedRun): void {
    if (this.stopped || this.runs.has(taskGuid)) return;
    const stop = new AbortController();
    const step = plan.stepMs ?? 20;
    const steps: (() => Promise<unknown> | void)[] = [
      () => this.claim(taskGuid),
      () => this.running(taskGuid),
      () => {
        for (const line of plan.logs ?? []) {
          if (typeof line === "string") this.log(taskGuid, line);
          else this.log(taskGuid, line.message, line.stream);
        }
      },
      () => this.complete(taskGuid, plan),
    ];
    const done = (async () => {
      try {
        for (const s of steps) {
          await sleep(step, stop.signal);
          if (stop.signal.aborted) return;
          await s();
        }
      } catch {
        // Refused (cancelled, deleted, claimed elsewhere) or the BBS went away: the run ends here.
      }
    })();
    this.runs.set(taskGuid, { stop, done });
    void done.finally(() => this.runs.delete(taskGuid));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const runs = [...this.runs.values()];
    for (const r of runs) r.stop.abort();
    await Promise.all(runs.map((r) => r.done));
    await this.heartbeat.stop();
    this.lifecycle.close();
    this.registry.close();
    await this.server.shutdown(200);
  }

  private stopRun(taskGuid: string): void {
    this.runs.get(taskGuid)?.stop.abort();
    this.outputs.get(taskGuid)?.end();
  }

  private state(): MessageInitShape<typeof cellv1.CellStateSchema> {
    const p = this.presence;
    return {
      cellId: p.cellId,
      zone: p.zone,
      stacks: p.stacks,
      rootfsProviders: p.rootfsProviders,
      placementTags: p.placementTags,
      optionalPlacementTags: p.optionalPlacementTags,
      total: p.total,
      available: p.available,
    };
  }

  private async *taskLogs(taskGuid: string, follow: boolean, signal: AbortSignal): AsyncGenerator<LogLine> {
    const output = this.outputs.get(taskGuid);
    if (!output) throw taskNotFound(taskGuid);
    let sent = 0;
    for (;;) {
      while (sent < output.lines.length) yield output.lines[sent++];
      if (!follow || output.ended || signal.aborted) return;
      await output.next(signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

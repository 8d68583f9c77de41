import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  CellPresenceSchema,
  CellService,
  LogLine_Stream,
  LogLineSchema,
  TaskService,
  TaskState,
  type CellPresence,
  type LogLine,
  type Task,
  TaskEventSchema,
} from "@diego/proto";
import { GrpcServer, createLogger, type TlsFiles } from "@diego/kit";
import { DiegoError, nowNanos, redactTask, taskNotFound, transition, validateTaskCreateRequest, type Actor, type TransitionArgs, type TransitionName } from "@diego/models";

/** How the simulated cell runs a task (see FakeBbs.autoRun). */
export interface SimulatedRun {
  cellId?: string;
  /** Output lines, STDOUT unless given as {message, stream: "STDERR"}. */
  logs?: (string | { message: string; stream: "STDOUT" | "STDERR" })[];
  result?: string;
  failed?: boolean;
  failureReason?: string;
  /** Pause between the steps claim → running → logs → complete; default 20 ms. */
  stepMs?: number;
}

export interface FakeBbsOptions {
  /** Default 127.0.0.1:0 (a free port). */
  listenAddress?: string;
  tls?: TlsFiles;
  cells?: MessageInitShape<typeof CellPresenceSchema>[];
}

type EventInit = MessageInitShape<typeof TaskEventSchema>;
type Watcher = { domain: string; push: (event: EventInit) => void };

/**
 * An in-memory BBS serving the public API (TaskService and CellService) over real gRPC, for testing
 * programs that use @diego/client or the diego CLI without etcd, an auctioneer or cells. Transitions go
 * through the same pure state machine as the real BBS (@diego/models `transition`), validation is the
 * same, and a simulated cell (`autoRun`) or the test itself (`start`, `running`, `complete`, `log`) plays
 * the cell's part. Not for production: nothing is stored and nothing runs.
 */
export class FakeBbs {
  readonly tasks = new Map<string, Task>();
  cells: CellPresence[];
  /** When set, every desired task is claimed, run and completed as it says (undefined: left PENDING). */
  autoRun: ((task: Task) => SimulatedRun | undefined) | undefined;
  /** Drop every watch event (to show that clients still follow tasks by polling). */
  dropEvents = false;
  /** Methods called, in order (`DesireTask`, `GetTask`…). */
  readonly calls: string[] = [];

  private readonly logs = new Map<string, LogLine[]>();
  private readonly watchers = new Set<Watcher>();
  private readonly changeListeners = new Set<() => void>();
  private readonly timers = new Set<NodeJS.Timeout>();

  private constructor(
    private readonly server: GrpcServer,
    readonly address: string,
    cells: CellPresence[],
  ) {
    this.cells = cells;
  }

  static async start(options: FakeBbsOptions = {}): Promise<FakeBbs> {
    const server = new GrpcServer({ logger: createLogger("fake-bbs", "silent"), tls: options.tls });
    const cells = (options.cells ?? []).map((c) => create(CellPresenceSchema, c));
    const listen = options.listenAddress ?? "127.0.0.1:0";
    let fake: FakeBbs | undefined;
    const self = () => fake!;
    server.add(TaskService, {
      desireTask: (req) => self().desireTask(req),
      getTask: (req) => self().getTask(req.taskGuid),
      listTasks: (req) => self().listTasks(req),
      cancelTask: (req) => self().clientTransition("CancelTask", "cancel", req.taskGuid),
      resolvingTask: (req) => self().clientTransition("ResolvingTask", "resolve", req.taskGuid),
      deleteTask: (req) => self().clientTransition("DeleteTask", "delete", req.taskGuid),
      watchTasks: (req, ctx) => self().watchTasks(req.domain, ctx.signal),
      taskLogs: (req, ctx) => self().taskLogs(req.taskGuid, req.follow, ctx.signal),
    });
    server.add(CellService, {
      listCells: () => {
        self().calls.push("ListCells");
        return { cells: self().cells };
      },
    });
    const port = await server.listen(listen);
    fake = new FakeBbs(server, `${listen.slice(0, listen.lastIndexOf(":"))}:${port}`, cells);
    return fake;
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await this.server.shutdown(200);
  }

  // ---- the cell's side, for tests that drive a task by hand ----

  start(taskGuid: string, cellId = "cell-1"): Task {
    return this.apply("start", "cell", taskGuid, { cellId })!;
  }

  running(taskGuid: string, cellId = "cell-1"): Task {
    return this.apply("running", "cell", taskGuid, { cellId })!;
  }

  complete(taskGuid: string, outcome: { failed?: boolean; failureReason?: string; result?: string } = {}): Task {
    const cellId = this.tasks.get(taskGuid)?.cellId ?? "";
    return this.apply("complete", "cell", taskGuid, {
      cellId,
      failed: outcome.failed ?? false,
      failureReason: outcome.failureReason ?? "",
      result: outcome.result ?? "",
    })!;
  }

  /** What the BBS's completion-callback worker does: COMPLETED → RESOLVING → removed, at once. */
  resolveAndDelete(taskGuid: string): void {
    this.apply("resolve", "bbs", taskGuid, {});
    this.apply("delete", "bbs", taskGuid, {});
  }

  log(taskGuid: string, message: string, stream: "STDOUT" | "STDERR" = "STDOUT"): void {
    const task = this.tasks.get(taskGuid);
    const lines = this.logs.get(taskGuid) ?? [];
    lines.push(
      create(LogLineSchema, {
        timestamp: nowNanos(),
        source: task?.logSource || "LOG",
        instance: "0",
        stream: stream === "STDERR" ? LogLine_Stream.STDERR : LogLine_Stream.STDOUT,
        message,
      }),
    );
    this.logs.set(taskGuid, lines);
    this.changed();
  }

  // ---- RPCs ----

  private desireTask(req: Parameters<typeof validateTaskCreateRequest>[0]) {
    this.calls.push("DesireTask");
    validateTaskCreateRequest(req);
    const task = this.apply("desire", "client", req.taskGuid, { request: req })!;
    const plan = this.autoRun?.(task);
    if (plan) this.simulate(task.taskGuid, plan);
    return { task: redactTask(task) };
  }

  private getTask(taskGuid: string) {
    this.calls.push("GetTask");
    const task = this.tasks.get(taskGuid);
    if (!task) throw taskNotFound(taskGuid);
    return redactTask(task);
  }

  private listTasks(req: { domain: string; cellId: string; state: TaskState }) {
    this.calls.push("ListTasks");
    const tasks = [...this.tasks.values()].filter(
      (t) => (!req.domain || t.domain === req.domain) && (!req.cellId || t.cellId === req.cellId) && (!req.state || t.state === req.state),
    );
    return { tasks: tasks.map(redactTask) };
  }

  private clientTransition(method: string, name: "cancel" | "resolve" | "delete", taskGuid: string) {
    this.calls.push(method);
    this.apply(name, "client", taskGuid, {});
    return {};
  }

  private async *watchTasks(domain: string, signal: AbortSignal): AsyncGenerator<EventInit> {
    this.calls.push("WatchTasks");
    const queue: EventInit[] = [];
    let wake: (() => void) | undefined;
    const watcher: Watcher = {
      domain,
      push: (event) => {
        queue.push(event);
        wake?.();
      },
    };
    this.watchers.add(watcher);
    const onAbort = () => wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted) {
        if (queue.length) {
          yield queue.shift()!;
          continue;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    } finally {
      this.watchers.delete(watcher);
      signal.removeEventListener("abort", onAbort);
    }
  }

  private async *taskLogs(taskGuid: string, follow: boolean, signal: AbortSignal): AsyncGenerator<LogLine> {
    this.calls.push("TaskLogs");
    if (!this.tasks.has(taskGuid)) throw taskNotFound(taskGuid);
    let sent = 0;
    for (;;) {
      const lines = this.logs.get(taskGuid) ?? [];
      while (sent < lines.length) yield lines[sent++];
      const task = this.tasks.get(taskGuid);
      const finished = !task || task.state === TaskState.COMPLETED || task.state === TaskState.RESOLVING;
      if (!follow || finished || signal.aborted) return;
      await this.nextChange(signal);
    }
  }

  // ---- internals ----

  private apply<N extends TransitionName>(name: N, actor: Actor, taskGuid: string, args: TransitionArgs[N]): Task | undefined {
    const before = this.tasks.get(taskGuid);
    let outcome;
    try {
      outcome = transition(name, actor, before, args, nowNanos());
    } catch (err) {
      if (DiegoError.is(err, "NOT_FOUND")) throw taskNotFound(taskGuid);
      throw err;
    }
    if (outcome.kind === "unchanged") return outcome.task;
    if (outcome.kind === "delete") {
      this.tasks.delete(taskGuid);
      this.logs.delete(taskGuid);
      this.emit(before!.domain, { event: { case: "removed", value: { task: redactTask(before!) } } });
      return undefined;
    }
    this.tasks.set(taskGuid, outcome.task);
    this.emit(
      outcome.task.domain,
      before
        ? { event: { case: "changed", value: { before: redactTask(before), after: redactTask(outcome.task) } } }
        : { event: { case: "created", value: { task: redactTask(outcome.task) } } },
    );
    return outcome.task;
  }

  private emit(domain: string, event: EventInit): void {
    this.changed();
    if (this.dropEvents) return;
    for (const w of this.watchers) if (!w.domain || w.domain === domain) w.push(event);
  }

  private changed(): void {
    for (const listener of [...this.changeListeners]) listener();
  }

  private nextChange(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.changeListeners.delete(done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      this.changeListeners.add(done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private simulate(taskGuid: string, plan: SimulatedRun): void {
    const cellId = plan.cellId ?? "cell-1";
    const step = plan.stepMs ?? 20;
    const steps: (() => void)[] = [
      () => this.start(taskGuid, cellId),
      () => this.running(taskGuid, cellId),
      () => {
        for (const line of plan.logs ?? []) {
          if (typeof line === "string") this.log(taskGuid, line);
          else this.log(taskGuid, line.message, line.stream);
        }
      },
      () => this.complete(taskGuid, { failed: plan.failed, failureReason: plan.failureReason, result: plan.result }),
    ];
    const runStep = (i: number) => {
      if (i >= steps.length) return;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        try {
          steps[i]();
        } catch {
          return; // cancelled or deleted meanwhile: a real cell would stop here too
        }
        runStep(i + 1);
      }, step);
      this.timers.add(timer);
    };
    runStep(0);
  }
}

import { clone, create, fromJson, toJson, type JsonObject } from "@bufbuild/protobuf";
import { DiegoError, FailureReason, isTerminal, taskWork } from "@diego/models";
import {
  FailureKind,
  TaskSchema,
  TaskState,
  cellv1,
  type Action,
  type Task,
  type TaskLifecycleService,
} from "@diego/proto";
import { taskLogger, type EgressPolicy, type Logger, type ServiceClient } from "@diego/kit";
import { actionRunner, runTree as runActionTree } from "../actions/run-action.js";
import type { ImageHomes } from "../actions/container-files.js";
import type { DownloadCache } from "../actions/download-cache.js";
import type { StepContext, StepResult, StepRunner } from "../actions/step.js";
import type { CapacityLedger } from "../capacity/capacity-ledger.js";
import type { TaskLogStore } from "../logs/task-log-store.js";
import type { CellMetrics } from "../metrics.js";
import {
  overriding,
  type ContainerRuntime,
  type ContainerSpec,
  type ExecIo,
  type ExecSpec,
  type ProcessHandle,
} from "../runtime/container-runtime.js";
import { decideReport, type Outcome, type Produced, type StopReason } from "./decide-report.js";
import { DeferredIo } from "./deferred-io.js";
import { cursorAtLeaf, pathsOf, recoveryOf, replayRole } from "./follow-plan.js";
import { ensureImage } from "./image-resolver.js";
import { cellLabels, containerLabels, containerName } from "./labels.js";
import type { OutcomeJournal } from "./outcome-journal.js";
import { tailOf, type Cursor, type JournalLogLine, type OutcomeRecord, type RunningRecord } from "./outcome-record.js";
import type { OutcomeReporter } from "./outcome-reporter.js";

export type LifecycleClient = ServiceClient<(typeof TaskLifecycleService)["method"]>;

export type RunnerPhase = "reserved" | "claiming" | "starting" | "running" | "finishing" | "done";

export type { StopReason } from "./decide-report.js";

export interface RunnerLimits {
  /** The cell's default max_pids (0 = none). */
  maxPids: number;
  network: boolean;
  /** The storage driver enforces disk_mb. */
  diskQuota: boolean;
  resultFileMaxBytes: number;
  gracefulShutdownMs: number;
  /** A reservation whose claim keeps failing is dropped after this long. */
  reservedExpirationMs: number;
  /** Where uploads may go (downloads: the cache's policy); default: the default policy. */
  egress?: EgressPolicy;
  /** Bytes one upload may send. */
  uploadMaxBytes?: number;
  /** Bytes of output per stream sent with the outcome (CompleteTaskRequest.log_tail); default 16 KiB. */
  logTailBytes?: number;
  /** How often a running process's output offsets are journaled (docs/reliability.md); default 1 s. */
  outputJournalMs?: number;
  /** Deadline of a container-engine call made while settling a task (usage); default 10 s. */
  engineCallTimeoutMs?: number;
  /** The cell's address, every process's CF_INSTANCE_IP. */
  instanceIp?: string;
  /** Run actions of one task whose processes may run at once (--max-task-processes). */
  maxTaskProcesses?: number;
}

export interface RunnerEnv {
  cellId: string;
  runtime: ContainerRuntime;
  lifecycle: LifecycleClient;
  ledger: CapacityLedger;
  logs: TaskLogStore;
  cache: DownloadCache;
  preloaded: Record<string, string>;
  limits: RunnerLimits;
  metrics: CellMetrics;
  logger: Logger;
  /** Where the outcome is kept, before the container goes, until the BBS has it. */
  journal: OutcomeJournal;
  /** Reports journaled outcomes until the BBS accepts or refuses them for good. */
  reporter: OutcomeReporter;
  /** Why the claimed task (as the BBS has it) must not run here, or undefined: see claimedTaskRefusal. */
  refuseClaimed(work: cellv1.TaskWork, task: Task): string | undefined;
  /** Ready containers a claimed task may take instead of creating one (docs/performance.md, "The container pool"). */
  pool?: { claim(spec: ContainerSpec): Promise<string | undefined> };
  /** Removes a container (through the cell, which marks it as its own doing). */
  removeContainer(id: string): Promise<void>;
  /** Home directories known of images (container-files.ts), shared by the cell's tasks. */
  imageHomes?: ImageHomes;
  /** Called once when the runner has released everything. */
  onDone(runner: TaskRunner): void;
}

/**
 * One task on this cell, from the reservation to the removed container: StartTask (the claim), and
 * only when it won: image → container → RunningTask → the action tree → result_file → CompleteTask →
 * remove the container → release the reservation.
 */
export class TaskRunner {
  phase: RunnerPhase = "claiming";
  containerId?: string;
  task?: Task;
  private readonly abort = new AbortController();
  private stopReason?: StopReason;
  private reservedSince = 0;
  /** The cursor last journaled (writes of the same one are skipped). */
  private journaled?: Cursor;
  private taskJson?: JsonObject;
  /**
   * The task's env for each of its processes, when its container was not created with it (a pooled one;
   * docs/performance.md, "The container pool").
   */
  private processEnv?: () => Promise<string[]>;
  private finished = false;
  private resolveDone!: () => void;
  /** Resolves when the runner has released its reservation. */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));
  private log: Logger;

  constructor(
    readonly work: cellv1.TaskWork,
    private readonly env: RunnerEnv,
  ) {
    this.log = taskLogger(env.logger, { taskGuid: work.taskGuid, domain: work.domain, cellId: env.cellId });
  }

  /** True until the task has been claimed: it only holds capacity. */
  get starting(): boolean {
    return this.phase === "reserved" || this.phase === "claiming" || this.phase === "starting";
  }

  start(): void {
    void this.claim();
  }

  /** Reconcile: try the claim again (or give the reservation up when it has waited too long). */
  retryClaim(now = Date.now()): void {
    if (this.phase !== "reserved") return;
    if (now - this.reservedSince > this.env.limits.reservedExpirationMs) {
      this.log.warn("reservation expired before the task could be claimed");
      this.finish();
      return;
    }
    void this.claim();
  }

  /** Stops the task at once (SIGTERM, grace, SIGKILL to every process), then cleans up. */
  stop(reason: StopReason): void {
    if (this.phase === "finishing" || this.phase === "done") return;
    this.stopReason ??= reason;
    this.log.info({ reason }, "stopping task");
    this.abort.abort(reason);
    if (this.phase === "reserved") this.finish();
  }

  private async claim(): Promise<void> {
    this.phase = "claiming";
    // The log exists before the claim can be seen: the BBS forwards TaskLogs here as soon as it is.
    this.env.logs.open(this.work.taskGuid, "");
    let res;
    try {
      res = await this.env.lifecycle.startTask({ taskGuid: this.work.taskGuid, cellId: this.env.cellId });
    } catch (err) {
      if (this.abort.signal.aborted) return this.finish();
      if (isTerminal(err)) {
        this.log.info({ reason: (err as Error).message }, "claim refused");
        return this.finish();
      }
      this.log.warn({ err }, "claim failed; reconcile will retry");
      this.phase = "reserved";
      this.reservedSince ||= Date.now();
      return;
    }
    const task = res.task;
    if (!task || (!res.shouldStart && task.state !== TaskState.CLAIMED)) {
      this.log.debug("task already started here; leaving it to reconcile");
      return this.finish();
    }
    const refusal = this.env.refuseClaimed(this.work, task);
    if (refusal) {
      this.log.warn({ reason: refusal }, "the claimed task differs from the work this cell admitted; rejecting it");
      await this.settle({ kind: "reject", reason: refusal });
      return this.finish();
    }
    this.task = task;
    await this.execute(task);
  }

  /**
   * After a restart of the cell: follows a task its earlier run left running (see follow-plan.ts), or
   * fails it with the reason when that cannot be done; either way its outcome is kept and reported.
   */
  static resume(record: RunningRecord, env: RunnerEnv): TaskRunner {
    const task = fromJson(TaskSchema, record.task as JsonObject);
    const runner = new TaskRunner(create(cellv1.TaskWorkSchema, taskWork(task)), env);
    runner.task = task;
    runner.containerId = record.containerId;
    runner.phase = "running";
    runner.journaled = record.cursor;
    if (record.envPerProcess) runner.processEnv = runner.envFromBbs();
    const reserved = env.ledger.reserve(runner.work);
    if (!reserved.admitted)
      runner.log.warn({ reason: reserved.reason }, "the resumed task does not fit the ledger; following it anyway");
    void runner.execute(task, () => runner.resumeContainer(task, record));
    return runner;
  }

  private async resumeContainer(task: Task, record: RunningRecord): Promise<Outcome> {
    const exists = await this.containerExists().catch(() => true);
    const recovery = recoveryOf(record.cursor, exists);
    if (recovery.kind === "fail") {
      this.log.warn(
        { reason: recovery.reason || FailureReason.containerMissing },
        "cannot follow the task after the restart",
      );
      if (recovery.containerLost)
        return { kind: "complete", failed: true, reason: FailureReason.containerMissing, result: "" };
      return {
        kind: "complete",
        failed: true,
        reason: recovery.reason,
        result: "",
        failureKind: FailureKind.CELL_LOST,
      };
    }
    let handle: ProcessHandle | undefined;
    // The process's output from where the earlier run had kept it, to the step that shows it.
    const io = new DeferredIo();
    if (recovery.target) {
      const { processId, output } = recovery.target;
      handle = await this.env.runtime.reattach(record.containerId, processId, io, output);
      if (!handle) {
        this.log.warn("the engine no longer knows the task's process");
        return { kind: "complete", failed: true, reason: FailureReason.containerMissing, result: "" };
      }
    }
    this.log.info({ at: record.cursor.at }, "cell restarted: following the task");
    return this.runTree(task, recovery.target && { path: recovery.target.path, handle: handle!, io });
  }

  private async execute(task: Task, produce: () => Promise<Outcome> = () => this.runContainer(task)): Promise<void> {
    if (this.phase !== "running") {
      this.phase = "starting";
      this.env.metrics.tasksStarted.inc(task.labels);
    }
    this.env.logs.open(task.taskGuid, task.logGuid);
    let produced: Produced;
    try {
      produced = await produce();
    } catch (err) {
      this.log.error({ err }, "task failed unexpectedly");
      produced = { kind: "error", message: (err as Error).message };
    }
    this.phase = "finishing";
    this.env.logs.end(task.taskGuid);
    await this.settle(decideReport(this.stopReason, produced));
    this.finish();
  }

  private async runContainer(task: Task): Promise<Outcome> {
    const signal = this.abort.signal;
    let image: { image: string; imageId: string };
    try {
      image = await ensureImage(this.env.runtime, task, this.env.preloaded);
    } catch (err) {
      return { kind: "complete", failed: true, reason: (err as Error).message, result: "" };
    }
    if (signal.aborted) return { kind: "reject", reason: "cell stopped before the task started" };
    try {
      const started = performance.now();
      const spec = this.spec(task, image);
      const pooled = await this.env.pool?.claim(spec);
      this.containerId = pooled ?? (await this.createContainer(spec));
      if (!pooled) await this.env.runtime.start(this.containerId);
      else if (spec.env.length) this.processEnv = () => Promise.resolve(spec.env);
      this.env.metrics.containerCreateSeconds.observe((performance.now() - started) / 1000);
    } catch (err) {
      this.log.error({ err }, "cannot create container");
      return { kind: "reject", reason: `failed to create container: ${(err as Error).message}` };
    }
    if (signal.aborted) return { kind: "reject", reason: "cell stopped before the task started" };
    await this.journalRunning({ at: "setup" });
    return this.runTree(task);
  }

  /**
   * Runs the action tree in the container; with `followed`, the tree of a task an earlier run of the cell
   * left running: the steps before the followed process are done, the process is the one given, the
   * steps after it run as usual. Before each leaf step the cursor is journaled (follow-plan.ts).
   */
  private async runTree(
    task: Task,
    followed?: { path: number[]; handle: ProcessHandle; io: DeferredIo },
  ): Promise<Outcome> {
    const signal = this.abort.signal;
    this.phase = "running";
    const running = this.env.lifecycle.runningTask({ taskGuid: task.taskGuid, cellId: this.env.cellId }).then(
      () => undefined,
      (err: unknown) => {
        if (isTerminal(err)) this.stop("gone");
        else this.log.warn({ err }, "RunningTask failed");
      },
    );
    const defaultSource = task.logSource || "LOG";
    const ctx: StepContext = {
      signal,
      logSource: defaultSource,
      log: (stream, message, source) => this.env.logs.append(task.taskGuid, { stream, message, source }),
    };
    const root = task.action;
    const paths = root ? pathsOf(root) : new Map<Action, number[]>();
    let handOut = followed?.handle;
    let recordNext: number[] | undefined;
    const exec = async (id: string, spec: ExecSpec, io: ExecIo, stop?: AbortSignal): Promise<ProcessHandle> => {
      if (handOut && followed) {
        const h = handOut;
        handOut = undefined;
        followed.io.attach(io);
        this.journalOutput(h, followed.path);
        return h;
      }
      const createEnv = await this.processEnv?.();
      const h = await this.env.runtime.exec(id, createEnv ? { ...spec, createEnv } : spec, io, stop);
      if (recordNext) {
        const path = recordNext;
        recordNext = undefined;
        await this.journalRunning({ at: "process", path, processId: h.id });
        this.journalOutput(h, path);
      } else this.journalOutput(h);
      return h;
    };
    const runtime = overriding(this.env.runtime, { exec });
    const around = async (action: Action, ctx: StepContext, step: StepRunner): Promise<StepResult> => {
      const path = paths.get(action);
      if (!root || !path) return step(action, ctx);
      const role = replayRole(path, followed?.path);
      if (role === "done") return undefined;
      if (role === "ahead" && isLeaf(action)) {
        const cursor = cursorAtLeaf(root, path);
        await this.journalRunning(cursor);
        if (cursor.at === "starting-process") recordNext = path;
      }
      return step(action, ctx);
    };
    const run = actionRunner({
      around,
      runtime,
      containerId: this.containerId!,
      cache: this.env.cache,
      gracefulShutdownMs: this.env.limits.gracefulShutdownMs,
      owner: task.taskGuid,
      egress: this.env.limits.egress,
      uploadMaxBytes: this.env.limits.uploadMaxBytes,
      instanceIp: this.env.limits.instanceIp,
      maxProcesses: this.env.limits.maxTaskProcesses,
      imageHomes: this.env.imageHomes,
      // A container the cell just made or claimed; a followed one has run the task's earlier steps.
      pristine: !followed,
      note: (message) => this.log.info(message),
    });
    const tree = task.action ? await runActionTree(run, task.action, ctx) : {};
    const err = tree.error;
    await running;
    let failed = err !== undefined;
    let reason = err?.message ?? "";
    if (failed && !signal.aborted && !(await this.containerExists())) reason = FailureReason.containerMissing;
    let result = "";
    if (task.resultFile && !signal.aborted) {
      try {
        result = await this.readResult(task.resultFile);
      } catch (e) {
        this.log.info({ reason: (e as Error).message }, "cannot read result file");
        if (!failed) {
          failed = true;
          reason = FailureReason.failedToFetchResult;
        }
      }
    }
    return { kind: "complete", failed, reason, result, exitStatus: tree.exitStatus };
  }

  private spec(task: Task, { image, imageId }: { image: string; imageId: string }): ContainerSpec {
    const limits = this.env.limits;
    return {
      name: containerName(this.env.cellId, task.taskGuid),
      image,
      imageId,
      labels: containerLabels(this.env.cellId, task.taskGuid),
      env: envOf(task),
      memoryMb: task.memoryMb,
      diskMb: limits.diskQuota ? task.diskMb : 0,
      cpuShares: cpuShares(task.cpuWeight),
      maxPids: task.maxPids || limits.maxPids,
      privileged: task.privileged,
      network: limits.network,
    };
  }

  private async createContainer(spec: ContainerSpec): Promise<string> {
    try {
      return await this.env.runtime.create(spec);
    } catch (err) {
      if (!DiegoError.is(err, "ALREADY_EXISTS")) throw err;
      // A container of an earlier attempt of this task on this cell: remove it and make ours.
      const stale = (await this.env.runtime.list(cellLabels(this.env.cellId))).filter((c) => c.name === spec.name);
      for (const c of stale) await this.env.runtime.remove(c.id);
      return this.env.runtime.create(spec);
    }
  }

  private async containerExists(): Promise<boolean> {
    const found = await this.env.runtime.list(cellLabels(this.env.cellId)).catch(() => undefined);
    return found === undefined || found.some((c) => c.id === this.containerId && c.status === "running");
  }

  private async readResult(path: string): Promise<string> {
    const file = await this.env.runtime.readFile(this.containerId!, path, this.env.limits.resultFileMaxBytes);
    if (!file) throw new Error(`${path} is not a file`);
    return file.data.toString("utf8").replace(/\uFFFD$/, "");
  }

  /**
   * Keeps the outcome: measured and journaled (fsynced) while the container still exists; then the
   * reporter owns it until the BBS has it, and the container goes while the report is on its way, as
   * Diego's rep reports before it deletes (docs/reliability.md, "The cell keeps every outcome"). With no
   * outcome (cancelled, gone) only the container goes.
   */
  private async settle(outcome: Outcome): Promise<void> {
    const guid = this.work.taskGuid;
    let record: OutcomeRecord | undefined;
    if (outcome.kind === "complete") {
      record = {
        version: 1,
        kind: "complete",
        taskGuid: guid,
        failed: outcome.failed,
        failureReason: outcome.reason,
        failureKind: outcome.failureKind ?? 0,
        result: outcome.result,
        exitStatus: outcome.exitStatus,
        usage: await this.usage(),
        logTail: await this.logTail(),
        labels: { ...this.task?.labels },
        recordedAt: Date.now(),
      };
    } else if (outcome.kind === "reject") {
      record = { version: 1, kind: "reject", taskGuid: guid, reason: outcome.reason, recordedAt: Date.now() };
    }
    try {
      if (record) await this.env.journal.write(record);
      else await this.env.journal.delete(guid);
    } catch (err) {
      // Reported from memory still; only a restart of the cell before the BBS has it would lose it.
      this.log.error({ err }, "cannot journal the task's outcome");
    }
    if (record) this.env.reporter.submit(record);
    if (this.containerId) {
      await this.env
        .removeContainer(this.containerId)
        .catch((err) => this.log.error({ err }, "cannot remove container; reconcile will"));
    }
  }

  /**
   * While the process at `path` runs, journals every `outputJournalMs` how far its output was delivered,
   * so a restarted cell delivers the rest from there (docs/reliability.md, "Output files"); output the
   * journal holds is released to the runtime. Without `path` (a process a restarted cell cannot follow)
   * its output is released as soon as it is delivered.
   */
  private journalOutput(h: ProcessHandle, path?: number[]): void {
    if (!h.output) return;
    let settled = false;
    const tick = async () => {
      if (settled) return;
      const output = h.output!();
      if (!path || (await this.journalRunning({ at: "process", path, processId: h.id, output }))) h.release?.(output);
    };
    const timer = setInterval(() => void tick(), this.env.limits.outputJournalMs ?? DEFAULT_OUTPUT_JOURNAL_MS);
    timer.unref();
    void h.exited
      .catch(() => undefined)
      .finally(() => {
        settled = true;
        clearInterval(timer);
      });
  }

  /**
   * Journals where the running task is, for a restarted cell to follow it (only when it changed); true
   * when the journal holds it.
   */
  private async journalRunning(cursor: Cursor): Promise<boolean> {
    if (!this.task || !this.containerId) return false;
    if (this.journaled && JSON.stringify(this.journaled) === JSON.stringify(cursor)) return true;
    this.journaled = cursor;
    this.taskJson ??= withoutSecrets(this.task);
    try {
      await this.env.journal.write({
        version: 1,
        kind: "running",
        taskGuid: this.work.taskGuid,
        containerId: this.containerId,
        task: this.taskJson,
        cursor,
        ...(this.processEnv ? { envPerProcess: true as const } : {}),
        recordedAt: Date.now(),
      });
      return true;
    } catch (err) {
      this.log.error({ err }, "cannot journal the running task; a restarted cell could not follow it");
      return false;
    }
  }

  /**
   * After a restart, the env of a task whose container was not created with it: the cell keeps no env
   * on disk, so it asks the BBS, which gives a task (secrets included) only to the cell it runs on
   * (StartTask of a task already on this cell changes nothing). Asked once it is needed, again after a failure.
   */
  private envFromBbs(): () => Promise<string[]> {
    let asked: Promise<string[]> | undefined;
    return () =>
      (asked ??= this.env.lifecycle
        .startTask({ taskGuid: this.work.taskGuid, cellId: this.env.cellId })
        .then((res) => {
          if (!res.task) throw new Error("the BBS sent no task");
          return envOf(res.task);
        })
        .catch((err: unknown) => {
          asked = undefined;
          throw new Error(
            `cannot get the task's env from the BBS after the cell restarted: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }));
  }

  private async usage(): Promise<CompleteRecordUsage | undefined> {
    if (!this.containerId) return undefined;
    try {
      const u = await withDeadline(
        this.env.runtime.usage(this.containerId),
        this.env.limits.engineCallTimeoutMs ?? 10_000,
        "container usage",
      );
      return u && { peakMemoryBytes: u.peakMemoryBytes.toString(), cpuTimeNs: u.cpuTimeNs.toString() };
    } catch (err) {
      this.log.info({ reason: (err as Error).message }, "cannot measure the container's usage");
      return undefined;
    }
  }

  private async logTail(): Promise<JournalLogLine[]> {
    const lines = [];
    for await (const line of this.env.logs.read(this.work.taskGuid, false)) lines.push(line);
    return tailOf(lines, this.env.limits.logTailBytes ?? DEFAULT_LOG_TAIL_BYTES);
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.phase = "done";
    if (!this.task) this.env.logs.discard(this.work.taskGuid);
    this.env.ledger.release(this.work.taskGuid);
    this.env.onDone(this);
    this.resolveDone();
  }
}

/** NAME=value of every process: env, then secret_env (given like env; it never appears in a log). */
function envOf(task: Task): string[] {
  return [...task.env, ...task.secretEnv].map((e) => `${e.name}=${e.value}`);
}

/** The task as JSON for the journal, without what must not rest on disk: secret_env, image credentials, env. */
function withoutSecrets(task: Task): JsonObject {
  const copy = clone(TaskSchema, task);
  copy.secretEnv = [];
  copy.env = [];
  copy.imageUsername = "";
  copy.imagePassword = "";
  return toJson(TaskSchema, copy) as JsonObject;
}

/** Steps that do work themselves (the others only arrange their children). */
function isLeaf(action: Action): boolean {
  const kind = action.action.case;
  return kind === "run" || kind === "download" || kind === "upload";
}

type CompleteRecordUsage = NonNullable<Extract<OutcomeRecord, { kind: "complete" }>["usage"]>;

export const DEFAULT_LOG_TAIL_BYTES = 16 * 1024;
/** How often a running process's output offsets are journaled. */
export const DEFAULT_OUTPUT_JOURNAL_MS = 1_000;

/** Rejects with `<what> took longer than <ms> ms` when the promise has not settled by then. */
export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** cpu_weight → Docker CPU shares: 1024 × w / 100, at least 2; 0 keeps the engine default. */
export function cpuShares(weight: number): number {
  if (!weight) return 0;
  return Math.max(2, Math.round((1024 * weight) / 100));
}

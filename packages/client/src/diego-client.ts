import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  CellService,
  TaskCreateRequestSchema,
  TaskService,
  type CellPresence,
  type LogLine,
  type Task,
  type TaskCreateRequest,
  type TaskEvent,
  type TaskState,
} from "@diego/proto";
import { createClient, type ServiceClient, type TlsFiles } from "@diego/kit";
import { DiegoError } from "@diego/models";
import { runToCompletion, type RunToCompletionOptions } from "./run-to-completion.js";
import { parseTaskState, type TaskStateName } from "./task-state.js";

/** The BBS of the local cluster (scripts/dev). */
export const DEFAULT_BBS_ADDRESS = "127.0.0.1:8889";

export interface DiegoClientOptions {
  /** host:port of the BBS; default 127.0.0.1:8889. */
  address?: string;
  /** Mutual TLS: the CA that signed the BBS's certificate, and this client's certificate and key. */
  tls?: TlsFiles;
  /** Deadline of each unary call; default 10 s. Streams (watch, logs) have none. */
  timeoutMs?: number;
  /** TLS name to verify when it differs from the address's host (e.g. connecting through a tunnel). */
  serverName?: string;
}

/** A task as a client submits it: the message, or its init shape (camelCase fields, bigint for int64). */
export type TaskCreateInit = TaskCreateRequest | MessageInitShape<typeof TaskCreateRequestSchema>;

/** ListTasks filters; empty ones match all. `state` is a TaskState or its name (`"RUNNING"`, `"running"`). */
export interface TaskFilter {
  domain?: string;
  cellId?: string;
  state?: TaskState | TaskStateName;
}

export interface RequestOptions {
  signal?: AbortSignal;
  /** Overrides the client's deadline for this call. */
  timeoutMs?: number;
}

type TaskServiceClient = ServiceClient<(typeof TaskService)["method"]>;
type CellServiceClient = ServiceClient<(typeof CellService)["method"]>;

/**
 * A typed client of the BBS's public API (diego.bbs.v1.TaskService and CellService): the counterpart
 * of Diego's ExternalTaskClient. Every failure is a DiegoError carrying the gRPC code (NOT_FOUND,
 * ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT with one violation per bad field, UNAVAILABLE
 * when the BBS cannot be reached, whose message names the address).
 */
export class DiegoClient {
  readonly address: string;
  private readonly tasks: TaskServiceClient;
  private readonly cells: CellServiceClient;

  constructor(options: DiegoClientOptions = {}) {
    this.address = options.address ?? DEFAULT_BBS_ADDRESS;
    const clientOptions = {
      tls: options.tls,
      defaultTimeoutMs: options.timeoutMs ?? 10_000,
      serverName: options.serverName,
    };
    this.tasks = createClient(TaskService, this.address, clientOptions);
    this.cells = createClient(CellService, this.address, clientOptions);
  }

  /** Stores a new task PENDING and queues it for placement; returns the stored task. */
  async desire(request: TaskCreateInit, options?: RequestOptions): Promise<Task> {
    const message = create(TaskCreateRequestSchema, request as MessageInitShape<typeof TaskCreateRequestSchema>);
    const response = await this.call(() => this.tasks.desireTask(message, options));
    if (!response.task)
      throw new DiegoError("INTERNAL", `the BBS at ${this.address} answered DesireTask without the task`);
    return response.task;
  }

  /** NOT_FOUND when there is no such task. */
  get(taskGuid: string, options?: RequestOptions): Promise<Task> {
    return this.call(() => this.tasks.getTask({ taskGuid }, options));
  }

  async list(filter: TaskFilter = {}, options?: RequestOptions): Promise<Task[]> {
    const state =
      filter.state === undefined
        ? undefined
        : typeof filter.state === "string"
          ? parseTaskState(filter.state)
          : filter.state;
    const response = await this.call(() =>
      this.tasks.listTasks({ domain: filter.domain, cellId: filter.cellId, state }, options),
    );
    return response.tasks;
  }

  /** PENDING, CLAIMED or RUNNING → COMPLETED, failed `task was cancelled`; FAILED_PRECONDITION once it is COMPLETED or RESOLVING. */
  async cancel(taskGuid: string, options?: RequestOptions): Promise<void> {
    await this.call(() => this.tasks.cancelTask({ taskGuid }, options));
  }

  /** COMPLETED → RESOLVING: this client takes the task to consume it; FAILED_PRECONDITION otherwise. */
  async resolve(taskGuid: string, options?: RequestOptions): Promise<void> {
    await this.call(() => this.tasks.resolvingTask({ taskGuid }, options));
  }

  /** Removes a RESOLVING task; FAILED_PRECONDITION otherwise. */
  async delete(taskGuid: string, options?: RequestOptions): Promise<void> {
    await this.call(() => this.tasks.deleteTask({ taskGuid }, options));
  }

  /** Every task change from now on (created / changed / removed), filtered by domain when given, until `signal` aborts. */
  watch(filter: { domain?: string } = {}, options: { signal?: AbortSignal } = {}): AsyncIterable<TaskEvent> {
    return this.stream(() => this.tasks.watchTasks({ domain: filter.domain }, options), options.signal);
  }

  /** The task's container output so far and, with `follow`, the lines that come until it completes. */
  logs(taskGuid: string, options: { follow?: boolean; signal?: AbortSignal } = {}): AsyncIterable<LogLine> {
    return this.stream(
      () => this.tasks.taskLogs({ taskGuid, follow: options.follow ?? false }, { signal: options.signal }),
      options.signal,
    );
  }

  /** The cells that are alive now, with their capacity. */
  async listCells(options?: RequestOptions): Promise<CellPresence[]> {
    const response = await this.call(() => this.cells.listCells({}, options));
    return response.cells;
  }

  /**
   * Desires the task, follows it to COMPLETED (events, with polling as the fallback so that no change
   * is missed), resolves and deletes it, and returns the completed task. `failed` and `failure_reason`
   * of the returned task say how it went; the promise rejects only when the task could not be run or
   * followed (bad request, BBS unreachable past `followTimeoutMs`, deleted by someone else, aborted).
   */
  runToCompletion(request: TaskCreateInit, options: RunToCompletionOptions = {}): Promise<Task> {
    return runToCompletion(
      this,
      create(TaskCreateRequestSchema, request as MessageInitShape<typeof TaskCreateRequestSchema>),
      options,
    );
  }

  close(): void {
    this.tasks.close();
    this.cells.close();
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.explain(err);
    }
  }

  private async *stream<T>(open: () => AsyncIterable<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
    try {
      yield* open();
    } catch (err) {
      // CANCELLED that this side did not ask for means the server cut the stream off (it stopped).
      if (DiegoError.is(err, "CANCELLED") && !signal?.aborted) {
        throw new DiegoError("UNAVAILABLE", `BBS at ${this.address}: the stream was cut off (${err.message})`);
      }
      throw this.explain(err);
    }
  }

  /** Errors of the transport say which BBS could not be reached; every other error passes as it is. */
  private explain(err: unknown): unknown {
    if (DiegoError.is(err, "UNAVAILABLE") || DiegoError.is(err, "DEADLINE_EXCEEDED")) {
      // grpc-js details carry a timestamp and an empty resolution note: keep what a person can act on.
      const detail = err.message
        .replace(/\s*\(\d{4}-\d\d-\d\dT[^)]*\)/g, "")
        .replace(/\.?\s*Resolution note:\s*$/, "")
        .trim();
      return new DiegoError(
        err.code,
        detail.includes(this.address) ? detail : `BBS at ${this.address}: ${detail}`,
        err.violations,
      );
    }
    return err;
  }
}

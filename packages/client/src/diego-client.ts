import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  CellService,
  TaskCreateRequestSchema,
  TaskService,
  type CellPresence,
  type LogLine,
  type Task,
  type TaskCreateRequest,
  type TaskState,
} from "@diego/proto";
import { createClient, type ServiceClient, type TlsFiles } from "@diego/kit";
import { DiegoError } from "@diego/models";
import { resumableWatch, type WatchFilter, type WatchItem, type WatchOptions } from "./resumable-watch.js";
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
  /** Every pair must match the task's labels. */
  labels?: Record<string, string>;
}

export interface ListOptions extends RequestOptions {
  /** Tasks per page (each page is one call with its own deadline); default: the BBS's (500). */
  pageSize?: number;
}

/** One ListTasks page; pass `nextPageToken` to `listPage` for the next one ("" on the last page). */
export interface TaskPage {
  tasks: Task[];
  nextPageToken: string;
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

  /** Every matching task, in guid order, read page by page. */
  async list(filter: TaskFilter = {}, options?: ListOptions): Promise<Task[]> {
    const out: Task[] = [];
    for await (const task of this.listAll(filter, options)) out.push(task);
    return out;
  }

  /** Every matching task, in guid order, a page at a time as the iteration goes (for lists too large to hold). */
  async *listAll(filter: TaskFilter = {}, options?: ListOptions): AsyncGenerator<Task> {
    let pageToken = "";
    do {
      const page = await this.listPage(filter, { ...options, pageToken });
      yield* page.tasks;
      pageToken = page.nextPageToken;
    } while (pageToken);
  }

  /** One page of matching tasks after `pageToken` ("" for the first). */
  async listPage(filter: TaskFilter = {}, options: ListOptions & { pageToken?: string } = {}): Promise<TaskPage> {
    const state =
      filter.state === undefined
        ? undefined
        : typeof filter.state === "string"
          ? parseTaskState(filter.state)
          : filter.state;
    const { pageSize, pageToken, ...callOptions } = options;
    const response = await this.call(() =>
      this.tasks.listTasks(
        { domain: filter.domain, cellId: filter.cellId, state, labels: filter.labels, pageSize, pageToken },
        callOptions,
      ),
    );
    return { tasks: response.tasks, nextPageToken: response.nextPageToken };
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

  /**
   * Every task change from now on (created / changed / removed) matching the domain and labels, until
   * `signal` aborts (CANCELLED). The live marker comes first, once. After a cut (BBS restart or
   * failover, network, a watcher cut off for falling behind) it reconnects on its own and goes on
   * after the last event's resume_token: nothing is missed or repeated. When the BBS no longer has
   * those events (OUT_OF_RANGE) it watches afresh and yields a TaskResync (see `isResync`) holding
   * the current tasks. `resume: false` ends the stream at the first cut instead.
   */
  watch(filter: WatchFilter = {}, options: WatchOptions = {}): AsyncGenerator<WatchItem> {
    return resumableWatch(
      {
        open: (f, resumeToken, signal) =>
          this.stream(
            () => this.tasks.watchTasks({ domain: f.domain, labels: f.labels, resumeToken }, { signal }),
            signal,
          ),
        list: (f, signal) => this.list(f, { signal }),
      },
      filter,
      options,
    );
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

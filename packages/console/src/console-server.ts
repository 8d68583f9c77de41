// The console's HTTP server (docs/console.md): the page, a JSON API over the BBS's own TaskService
// and CellService handlers (called with the HTTP caller's identity, so the authorization table and
// its domain rules apply as to any gRPC caller), and server-sent events for live updates.
import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { TLSSocket } from "node:tls";
import {
  create,
  fromBinary,
  toBinary,
  type DescMessage,
  type MessageInitShape,
  type MessageShape,
} from "@bufbuild/protobuf";
import { Metadata } from "@grpc/grpc-js";
import {
  AUTHORIZATION,
  authorize,
  describeIdentity,
  identityOfCertificate,
  isLoopbackAddress,
  type CallContext,
  type Identity,
  type Logger,
  type ServiceImpl,
  type TlsFiles,
} from "@diego/kit";
import { DiegoError } from "@diego/models";
import {
  CancelTaskRequestSchema,
  CellPresenceSchema,
  GetTaskRequestSchema,
  ListCellsRequestSchema,
  ListTasksRequestSchema,
  ListTasksResponseSchema,
  TaskEventSchema,
  TaskLogsRequestSchema,
  TaskSchema,
  TaskState,
  WatchTasksRequestSchema,
  LogLine_Stream,
  type CellService,
  type Task,
  type TaskService,
} from "@diego/proto";
import { bundleApp } from "./bundle.js";
import {
  cellJson,
  countByState,
  newestFirst,
  page,
  parseFilter,
  placementFailures,
  taskJson,
  timeline,
  type TaskFilter,
} from "./views.js";

/** What the console reads of the BBS: its own client API handlers, and who leads. */
export interface ConsoleBackend {
  tasks: Pick<
    ServiceImpl<(typeof TaskService)["method"]>,
    "getTask" | "listTasks" | "cancelTask" | "watchTasks" | "taskLogs"
  >;
  cells: Pick<ServiceImpl<(typeof CellService)["method"]>, "listCells">;
  /** The instance id of the leading BBS and the address of the active auctioneer, when known. */
  leaders(): Promise<{ bbs?: string; auctioneer?: string }>;
}

export interface ConsoleOptions {
  /** host:port; port 0 picks a free one. */
  address: string;
  /** With TLS: HTTPS that requires a client certificate of the CA, whose role decides what it may see and do. */
  tls?: TlsFiles;
  /** Plaintext on a non-loopback address (refused without it). */
  insecure?: boolean;
  /** Cancelling from the console (only where the caller may cancel); read-only without it. */
  allowCancel: boolean;
  logger: Logger;
  /** Most tasks read for one list or overview. */
  maxTasks?: number;
}

const PATHS = {
  get: "/diego.bbs.v1.TaskService/GetTask",
  list: "/diego.bbs.v1.TaskService/ListTasks",
  cancel: "/diego.bbs.v1.TaskService/CancelTask",
  watch: "/diego.bbs.v1.TaskService/WatchTasks",
  logs: "/diego.bbs.v1.TaskService/TaskLogs",
  cells: "/diego.bbs.v1.CellService/ListCells",
} as const;

const HTTP_STATUS: Partial<Record<string, number>> = {
  INVALID_ARGUMENT: 400,
  NOT_FOUND: 404,
  PERMISSION_DENIED: 403,
  FAILED_PRECONDITION: 409,
  ALREADY_EXISTS: 409,
  RESOURCE_EXHAUSTED: 429,
  UNAVAILABLE: 503,
};

export class ConsoleServer {
  private server?: Server;
  private readonly streams = new Set<AbortController>();
  private readonly page: string;
  private readonly css: string;
  private script?: Promise<string>;
  private readonly maxTasks: number;

  constructor(
    private readonly backend: ConsoleBackend,
    private readonly options: ConsoleOptions,
  ) {
    const web = new URL("./web/", import.meta.url);
    this.page = readFileSync(new URL("index.html", web), "utf8");
    this.css = readFileSync(new URL("app.css", web), "utf8");
    this.maxTasks = options.maxTasks ?? 10_000;
  }

  /** Binds and returns the URL the console is served at. */
  async listen(): Promise<string> {
    const { address, tls, insecure, logger } = this.options;
    if (!tls && !isLoopbackAddress(address)) {
      if (!insecure)
        throw new Error(
          `refusing a plaintext console on ${address}, which is not a loopback address: give the TLS files or --insecure`,
        );
      logger.warn({ address }, "console without TLS on a non-loopback address (--insecure)");
    }
    this.script = bundleApp();
    await this.script;
    const handler = (req: IncomingMessage, res: ServerResponse) => void this.handle(req, res);
    this.server = tls
      ? createHttpsServer(
          {
            ca: readFileSync(tls.caFile),
            cert: readFileSync(tls.certFile),
            key: readFileSync(tls.keyFile),
            requestCert: true,
            rejectUnauthorized: true,
          },
          handler,
        )
      : createHttpServer(handler);
    const host = address.slice(0, address.lastIndexOf(":")).replace(/^\[|\]$/g, "");
    const port = Number(address.slice(address.lastIndexOf(":") + 1));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(port, host, () => resolve());
    });
    const bound = this.server.address();
    const boundPort = typeof bound === "object" && bound ? bound.port : port;
    const shownHost = host.includes(":") ? `[${host}]` : host;
    return `${tls ? "https" : "http"}://${shownHost}:${boundPort}/`;
  }

  async close(): Promise<void> {
    for (const s of this.streams) s.abort();
    if (!this.server) return;
    this.server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }

  private identity(req: IncomingMessage): Identity | undefined {
    if (!this.options.tls) return undefined;
    return identityOfCertificate((req.socket as TLSSocket).getPeerCertificate());
  }

  /** A CallContext for calling a handler as this HTTP caller, after the same authorization as gRPC. */
  private context(req: IncomingMessage, method: string, request: unknown, signal: AbortSignal): CallContext {
    const identity = this.identity(req);
    if (this.options.tls) {
      const denied = authorize(AUTHORIZATION, method, request, identity);
      if (denied) throw denied;
    }
    return { signal, metadata: new Metadata(), peer: req.socket.remoteAddress ?? "", method, identity };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://console");
    const abort = new AbortController();
    req.on("close", () => abort.abort());
    try {
      const route = `${req.method} ${url.pathname}`;
      if (route === "GET /" || route === "GET /index.html")
        return send(res, 200, "text/html; charset=utf-8", this.page);
      if (route === "GET /app.js") return send(res, 200, "text/javascript; charset=utf-8", await this.script!);
      if (route === "GET /app.css") return send(res, 200, "text/css; charset=utf-8", this.css);
      if (route === "GET /api/overview") return json(res, 200, await this.overview(req, abort.signal));
      if (route === "GET /api/tasks") return json(res, 200, await this.tasksPage(req, url.searchParams, abort.signal));
      if (route === "GET /api/events") return await this.events(req, res, url.searchParams);
      const task = /^\/api\/tasks\/([A-Za-z0-9_-]+)(\/logs|\/cancel)?$/.exec(url.pathname);
      if (task && req.method === "GET" && !task[2]) return json(res, 200, await this.task(req, task[1]!, abort.signal));
      if (task && req.method === "GET" && task[2] === "/logs") return await this.logs(req, res, task[1]!);
      if (task && req.method === "POST" && task[2] === "/cancel") return await this.cancel(req, res, task[1]!);
      return json(res, 404, { error: `no such page: ${req.method} ${url.pathname}` });
    } catch (err) {
      const e = err instanceof DiegoError ? err : undefined;
      if (!e) this.options.logger.error({ err }, "console request failed");
      if (!res.headersSent) json(res, (e && HTTP_STATUS[e.code]) ?? 500, { error: e?.message ?? "internal error" });
      else res.end();
    }
  }

  private async call<I extends DescMessage, O>(
    req: IncomingMessage,
    method: string,
    schema: I,
    init: MessageInitShape<I>,
    signal: AbortSignal,
    fn: (request: MessageShape<I>, ctx: CallContext) => O,
  ): Promise<Awaited<O>> {
    const request = create(schema, init);
    return await fn(request, this.context(req, method, request, signal));
  }

  /** Every task the caller may see that matches the filter (at most maxTasks), through ListTasks' pages. */
  private async allTasks(req: IncomingMessage, filter: TaskFilter, signal: AbortSignal): Promise<Task[]> {
    const tasks: Task[] = [];
    let token = "";
    do {
      const res = await this.call(
        req,
        PATHS.list,
        ListTasksRequestSchema,
        {
          domain: filter.domain ?? "",
          cellId: filter.cellId ?? "",
          state: filter.state ?? TaskState.INVALID,
          labels: filter.labels,
          pageSize: 1000,
          pageToken: token,
        },
        signal,
        (r, ctx) => this.backend.tasks.listTasks(r, ctx),
      );
      // The BBS's handler may carry the tasks as their stored bytes (unknown fields): decode them.
      const page = fromBinary(
        ListTasksResponseSchema,
        toBinary(ListTasksResponseSchema, create(ListTasksResponseSchema, res)),
      );
      tasks.push(...page.tasks);
      token = page.nextPageToken;
    } while (token && tasks.length < this.maxTasks);
    return tasks;
  }

  private async cellsJson(req: IncomingMessage, signal: AbortSignal) {
    const res = await this.call(req, PATHS.cells, ListCellsRequestSchema, {}, signal, (r, ctx) =>
      this.backend.cells.listCells(r, ctx),
    );
    return (res.cells ?? []).map((c) => cellJson(create(CellPresenceSchema, c)));
  }

  private async overview(req: IncomingMessage, signal: AbortSignal) {
    const [tasks, cells, leaders] = await Promise.all([
      this.allTasks(req, { labels: {} }, signal),
      this.cellsJson(req, signal),
      this.backend.leaders(),
    ]);
    const onCell = new Map<string, number>();
    for (const t of tasks)
      if (t.cellId && (t.state === TaskState.CLAIMED || t.state === TaskState.RUNNING))
        onCell.set(t.cellId, (onCell.get(t.cellId) ?? 0) + 1);
    return {
      identity: describeIdentity(this.identity(req)),
      can_cancel: this.options.allowCancel,
      leaders,
      counts: countByState(tasks),
      truncated: tasks.length >= this.maxTasks,
      cells: cells.map((c) => ({ ...c, tasks_running: onCell.get(String(c.cell_id)) ?? 0 })),
      recent: newestFirst(tasks).slice(0, 10).map(taskJson),
      placement_failures: placementFailures(tasks, 10),
    };
  }

  private async tasksPage(req: IncomingMessage, query: URLSearchParams, signal: AbortSignal) {
    const filter = parseFilter(query);
    if ("error" in filter) throw new DiegoError("INVALID_ARGUMENT", filter.error);
    const size = Math.min(Math.max(Number(query.get("page_size")) || 25, 1), 200);
    const tasks = newestFirst(await this.allTasks(req, filter, signal));
    const { items, next } = page(tasks, query.get("page_token") ?? "", size);
    return { tasks: items.map(taskJson), next_page_token: next, total: tasks.length, counts: countByState(tasks) };
  }

  private async task(req: IncomingMessage, guid: string, signal: AbortSignal) {
    const task = create(
      TaskSchema,
      await this.call(req, PATHS.get, GetTaskRequestSchema, { taskGuid: guid }, signal, (r, ctx) =>
        this.backend.tasks.getTask(r, ctx),
      ),
    );
    return { task: taskJson(task), timeline: timeline(task), can_cancel: this.options.allowCancel };
  }

  private async cancel(req: IncomingMessage, res: ServerResponse, guid: string): Promise<void> {
    if (!this.options.allowCancel)
      throw new DiegoError(
        "PERMISSION_DENIED",
        "this console is read-only (the BBS runs without --console-allow-cancel)",
      );
    // A page of another site cannot cancel: the request must come from the console's own script.
    if (req.headers["x-diego-console"] !== "1")
      throw new DiegoError("PERMISSION_DENIED", "cancel requests must come from the console page");
    const signal = new AbortController().signal;
    await this.call(req, PATHS.cancel, CancelTaskRequestSchema, { taskGuid: guid }, signal, (r, ctx) =>
      this.backend.tasks.cancelTask(r, ctx),
    );
    this.options.logger.info(
      { taskGuid: guid, by: describeIdentity(this.identity(req)) },
      "task cancelled from the console",
    );
    json(res, 200, { cancelled: guid });
  }

  /** Starts an event stream whose end (the client leaving, or close()) aborts `abort`. */
  private startStream(req: IncomingMessage, res: ServerResponse, abort: AbortController): void {
    this.streams.add(abort);
    const done = () => {
      abort.abort();
      this.streams.delete(abort);
    };
    req.on("close", done);
    abort.signal.addEventListener("abort", () => res.end(), { once: true });
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
    });
    res.write(": connected\n\n");
    const ping = setInterval(() => res.write(": ping\n\n"), 15_000);
    abort.signal.addEventListener("abort", () => clearInterval(ping), { once: true });
  }

  /** Live updates: task events (from WatchTasks), and the cells and leaders whenever they change. */
  private async events(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    const request = create(WatchTasksRequestSchema, { domain: query.get("domain") ?? "" });
    const abort = new AbortController();
    const { signal } = abort;
    // Authorized before the stream starts, so that a refusal is an HTTP error.
    const ctx = this.context(req, PATHS.watch, request, signal);
    this.startStream(req, res, abort);
    let lastCells = "";
    let lastLeaders = "";
    const poll = async () => {
      try {
        const cells = JSON.stringify(await this.cellsJson(req, signal));
        if (cells !== lastCells) sse(res, "cells", (lastCells = cells));
        const leaders = JSON.stringify(await this.backend.leaders());
        if (leaders !== lastLeaders) sse(res, "leaders", (lastLeaders = leaders));
      } catch (err) {
        if (!signal.aborted) sse(res, "problem", JSON.stringify({ error: (err as Error).message }));
      }
    };
    await poll();
    const timer = setInterval(() => void poll(), 1_000);
    signal.addEventListener("abort", () => clearInterval(timer), { once: true });
    try {
      for await (const init of this.backend.tasks.watchTasks(request, ctx)) {
        if (signal.aborted) break;
        // The hub encodes each event once for every gRPC stream (the oneof travels as encoded bytes): read it back.
        const e = fromBinary(TaskEventSchema, toBinary(TaskEventSchema, create(TaskEventSchema, init))).event;
        if (e.case === "live") sse(res, "live", "{}");
        const task =
          e.case === "changed"
            ? e.value.after
            : e.case === "created" || e.case === "removed"
              ? e.value.task
              : undefined;
        if (task) sse(res, "task", JSON.stringify({ kind: e.case, task: taskJson(task) }));
      }
    } catch (err) {
      if (!signal.aborted) sse(res, "problem", JSON.stringify({ error: (err as Error).message }));
    }
    abort.abort();
  }

  /** A task's log lines, following while it runs (then the kept tail once it is done). */
  private async logs(req: IncomingMessage, res: ServerResponse, guid: string): Promise<void> {
    const request = create(TaskLogsRequestSchema, { taskGuid: guid, follow: true });
    const abort = new AbortController();
    const ctx = this.context(req, PATHS.logs, request, abort.signal);
    this.startStream(req, res, abort);
    try {
      for await (const line of this.backend.tasks.taskLogs(request, ctx)) {
        sse(
          res,
          "line",
          JSON.stringify({
            at: Number(BigInt(line.timestamp ?? 0n) / 1_000_000n),
            source: line.source ?? "",
            stream: line.stream === LogLine_Stream.STDERR ? "stderr" : "stdout",
            message: line.message ?? "",
          }),
        );
      }
      sse(res, "end", "{}");
    } catch (err) {
      if (!abort.signal.aborted) sse(res, "problem", JSON.stringify({ error: (err as Error).message }));
    }
    abort.abort();
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    "content-type": type,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(body));
}

function sse(res: ServerResponse, event: string, data: string): void {
  res.write(`event: ${event}\ndata: ${data}\n\n`);
}

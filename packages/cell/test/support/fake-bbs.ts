// A small in-memory BBS for the cell's tests and benchmark: TaskService (desire, get, list, cancel,
// resolve, delete, logs), TaskLifecycleService and CellRegistryService over a Map, using the real
// state machine (`transition`). DesireTask also plays the auctioneer: it sends the task to a live cell.
import { EventEmitter } from "node:events";
import { create } from "@bufbuild/protobuf";
import { DiegoError, nowNanos, taskNotFound, taskWork, transition, validateTaskCreateRequest, type Actor, type TransitionArgs, type TransitionName } from "@diego/models";
import {
  CellRegistryService,
  TaskCreateRequestSchema,
  TaskLifecycleService,
  TaskService,
  TaskState,
  cellv1,
  type CellPresence,
  type Task,
} from "@diego/proto";
import { createClient, createLogger, GrpcServer, type ServiceClient, type ServiceImpl } from "@diego/kit";
import type { MessageInitShape } from "@bufbuild/protobuf";


type CellClient = ServiceClient<(typeof cellv1.CellRepService)["method"]>;

export interface Transition {
  taskGuid: string;
  state: TaskState;
  /** performance.now() when it happened */
  at: number;
}

export class FakeBbs {
  readonly tasks = new Map<string, Task>();
  readonly cells = new Map<string, CellPresence>();
  readonly transitions: Transition[] = [];
  readonly events = new EventEmitter();
  private readonly server = new GrpcServer({ logger: createLogger("fake-bbs", "silent") });
  private readonly clients = new Map<string, CellClient>();
  /** When false, DesireTask only stores the task (tests then call Perform themselves). */
  autoPlace = true;
  address = "";

  static async start(): Promise<FakeBbs> {
    const bbs = new FakeBbs();
    await bbs.listen();
    return bbs;
  }

  private async listen(): Promise<void> {
    const unimplemented = () => {
      throw new DiegoError("UNIMPLEMENTED", "not in the fake BBS");
    };
    const taskService: ServiceImpl<(typeof TaskService)["method"]> = {
      desireTask: async (req) => ({ task: await this.desire(req) }),
      getTask: (req) => {
        const t = this.tasks.get(req.taskGuid);
        if (!t) throw taskNotFound(req.taskGuid);
        return t;
      },
      listTasks: (req) => ({
        tasks: [...this.tasks.values()].filter(
          (t) => (!req.cellId || t.cellId === req.cellId) && (!req.domain || t.domain === req.domain) && (!req.state || t.state === req.state),
        ),
      }),
      cancelTask: async (req) => {
        const before = this.tasks.get(req.taskGuid);
        this.apply("cancel", "client", req.taskGuid, {});
        if (before?.cellId) await this.cellClient(before.cellId)?.cancelTask({ taskGuid: req.taskGuid }).catch(() => undefined);
        return {};
      },
      resolvingTask: (req) => (this.apply("resolve", "client", req.taskGuid, {}), {}),
      deleteTask: (req) => (this.apply("delete", "client", req.taskGuid, {}), {}),
      watchTasks: unimplemented,
      taskLogs: (req, ctx) => this.forwardLogs(req.taskGuid, req.follow, ctx.signal),
    };
    const lifecycle: ServiceImpl<(typeof TaskLifecycleService)["method"]> = {
      startTask: (req) => {
        const outcome = this.apply("start", "cell", req.taskGuid, { cellId: req.cellId });
        return { shouldStart: outcome === "put", task: this.tasks.get(req.taskGuid) };
      },
      runningTask: (req) => (this.apply("running", "cell", req.taskGuid, { cellId: req.cellId }), {}),
      completeTask: (req) => (
        this.apply("complete", "cell", req.taskGuid, { cellId: req.cellId, failed: req.failed, failureReason: req.failureReason, result: req.result }), {}
      ),
      rejectTask: (req) => {
        this.apply("reject", req.cellId ? "cell" : "auctioneer", req.taskGuid, { reason: req.rejectionReason, cellId: req.cellId, maxRetries: 3 });
        return { failed: this.tasks.get(req.taskGuid)?.state === TaskState.COMPLETED };
      },
    };
    const registry: ServiceImpl<(typeof CellRegistryService)["method"]> = {
      heartbeat: (req) => {
        if (req.cell) this.cells.set(req.cell.cellId, req.cell);
        this.events.emit("heartbeat", req.cell);
        return {};
      },
      deregister: (req) => {
        this.cells.delete(req.cellId);
        this.events.emit("deregister", req.cellId);
        return {};
      },
    };
    this.server.add(TaskService, taskService).add(TaskLifecycleService, lifecycle).add(CellRegistryService, registry);
    const port = await this.server.listen("127.0.0.1:0");
    this.address = `127.0.0.1:${port}`;
  }

  private async *forwardLogs(taskGuid: string, follow: boolean, signal: AbortSignal) {
    const t = this.tasks.get(taskGuid);
    const client = t && this.cellClient(t.cellId);
    if (!client) throw taskNotFound(taskGuid);
    for await (const line of client.taskLogs({ taskGuid, follow }, { signal })) yield line;
  }

  cellClient(cellId: string): CellClient | undefined {
    const presence = this.cells.get(cellId);
    if (!presence) return undefined;
    let c = this.clients.get(presence.address);
    if (!c) {
      c = createClient(cellv1.CellRepService, presence.address);
      this.clients.set(presence.address, c);
    }
    return c;
  }

  /** Stores a task PENDING and (with autoPlace) sends it to the first live cell, like the auctioneer. */
  async desire(init: MessageInitShape<typeof TaskCreateRequestSchema>): Promise<Task> {
    const req = create(TaskCreateRequestSchema, init);
    validateTaskCreateRequest(req);
    this.apply("desire", "client", req.taskGuid, { request: req });
    const task = this.tasks.get(req.taskGuid)!;
    if (this.autoPlace) await this.place(task);
    return task;
  }

  async place(task: Task, cellId = [...this.cells.keys()][0]): Promise<string[]> {
    const client = cellId ? this.cellClient(cellId) : undefined;
    if (!client) throw new Error("no live cell");
    const res = await client.perform({
      cellId,
      tasks: [taskWork(task)],
    });
    for (const f of res.failed) this.apply("reject", "auctioneer", f.taskGuid, { reason: f.reason, cellId: "", maxRetries: 3 });
    return res.failed.map((f) => f.reason);
  }

  apply<N extends TransitionName>(name: N, actor: Actor, guid: string, args: TransitionArgs[N]): "put" | "delete" | "unchanged" {
    const outcome = transition(name, actor, this.tasks.get(guid), args, nowNanos());
    if (outcome.kind === "put") {
      this.tasks.set(guid, outcome.task);
      this.transitions.push({ taskGuid: guid, state: outcome.task.state, at: performance.now() });
    } else if (outcome.kind === "delete") this.tasks.delete(guid);
    this.events.emit("change", guid);
    return outcome.kind;
  }

  /** Waits until the task satisfies `ok` (checked on every change), or fails after timeoutMs. */
  waitFor(guid: string, ok: (t: Task | undefined) => boolean, timeoutMs = 60_000): Promise<Task | undefined> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const t = this.tasks.get(guid);
        if (ok(t)) {
          cleanup();
          resolve(t);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`task ${guid} did not reach the expected state; now ${JSON.stringify(this.tasks.get(guid)?.state)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.events.off("change", check);
      };
      this.events.on("change", check);
      check();
    });
  }

  completed(guid: string, timeoutMs?: number): Promise<Task> {
    return this.waitFor(guid, (t) => t?.state === TaskState.COMPLETED, timeoutMs) as Promise<Task>;
  }

  waitForCell(cellId: string, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.cells.has(cellId)) return resolve();
      const timer = setTimeout(() => reject(new Error(`cell ${cellId} never heartbeated`)), timeoutMs);
      const on = (cell: CellPresence) => {
        if (cell.cellId !== cellId) return;
        clearTimeout(timer);
        this.events.off("heartbeat", on);
        resolve();
      };
      this.events.on("heartbeat", on);
    });
  }

  async stop(): Promise<void> {
    for (const c of this.clients.values()) c.close();
    await this.server.shutdown(100);
  }
}

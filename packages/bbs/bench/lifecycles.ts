// Full task lifecycles through the BBS's gRPC API: desire → start → running → complete → resolving →
// delete, six transitions (six compare-and-swap writes) each. Two ways of calling:
//   unary    each transition its own RPC, each client one lifecycle at a time (the per-call cost);
//   batched  clients send their calls in TaskBatch, simulated cells theirs in LifecycleBatch (a cell
//            sends what it has every CELL_FLUSH_MS, Nomad-style); each client keeps WINDOW lifecycles
//            going. Tasks reach the cells the real way: the BBS sends them to the (bench) auctioneer.
import { createClient, GrpcServer, type Logger } from "@diego/kit";
import { auctioneerv1, TaskLifecycleService, TaskService } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { LifecycleBatchItemSchema, TaskBatchItemSchema } from "@diego/proto";

type TaskItem = MessageInitShape<typeof TaskBatchItemSchema>;
type CellItem = MessageInitShape<typeof LifecycleBatchItemSchema>;

export interface RunResult {
  /** Lifecycles finished per second in the measured window. */
  rate: number;
  /** gRPC calls made in the measured window per lifecycle finished in it. */
  callsPerLifecycle: number;
}

/** The measured window: `warmupMs` first (not counted), then `seconds`, bracketed by onStart and onEnd. */
export interface Window {
  seconds: number;
  warmupMs: number;
  onStart?: () => void;
  onEnd?: () => void;
}

/** Sends each client's lifecycles one RPC per transition, one lifecycle at a time. */
export async function unaryLifecycles(address: string, clients: number, w: Window): Promise<RunResult> {
  const tasks = createClient(TaskService, address);
  const lifecycle = createClient(TaskLifecycleService, address);
  let n = 0;
  const run = async (worker: number, until: number, count: () => void) => {
    const cellId = `sim-cell-${worker % 8}`;
    while (Date.now() < until) {
      const taskGuid = `life-${clients}-${worker}-${n++}`;
      await tasks.desireTask(desireRequest(taskGuid, worker));
      const { shouldStart } = await lifecycle.startTask({ taskGuid, cellId });
      if (!shouldStart) throw new Error("lost a claim nobody else made");
      await lifecycle.runningTask({ taskGuid, cellId });
      await lifecycle.completeTask({ taskGuid, cellId, result: "ok" });
      await tasks.resolvingTask({ taskGuid });
      await tasks.deleteTask({ taskGuid });
      count();
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => run(c, Date.now() + w.warmupMs, () => undefined)));
  let done = 0;
  w.onStart?.();
  const until = Date.now() + w.seconds * 1000;
  await Promise.all(Array.from({ length: clients }, (_, c) => run(c, until, () => done++)));
  w.onEnd?.();
  tasks.close();
  lifecycle.close();
  return { rate: done / w.seconds, callsPerLifecycle: 6 };
}

/**
 * Collects items and sends them in one call: every `flushMs` after the first item waits, or at once
 * when `maxItems` wait. Each item's promise settles with its own result.
 */
class Batcher<I, R> {
  private items: I[] = [];
  private waiters: { resolve(r: R): void; reject(e: unknown): void }[] = [];
  private timer?: NodeJS.Timeout;
  calls = 0;

  constructor(
    private readonly send: (items: I[]) => Promise<R[]>,
    private readonly flushMs: number,
    private readonly maxItems: number,
  ) {}

  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.items.push(item);
      this.waiters.push({ resolve, reject });
      if (this.items.length >= this.maxItems) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.flushMs);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const items = this.items;
    const waiters = this.waiters;
    this.items = [];
    this.waiters = [];
    if (items.length === 0) return;
    this.calls++;
    this.send(items).then(
      (results) => results.forEach((r, i) => waiters[i]!.resolve(r)),
      (err: unknown) => waiters.forEach((w) => w.reject(err)),
    );
  }
}

export interface BatchedOptions {
  clients: number;
  /** Lifecycles each client keeps going at once. */
  window: number;
  cells: number;
  /** How often a cell sends what it has (LifecycleBatch). */
  cellFlushMs: number;
  /** How often a client sends what it has (TaskBatch). */
  clientFlushMs: number;
}

/**
 * The bench's auctioneer: it hands every task the BBS sends it to one of the simulated cells (by
 * guid), which claims, runs and completes it through LifecycleBatch.
 */
export async function dispatchingAuctioneer(logger: Logger) {
  let received = 0;
  let dispatch: ((guid: string) => void) | undefined;
  const server = new GrpcServer({ logger });
  server.add(auctioneerv1.AuctioneerService, {
    requestTaskAuctions: (req) => {
      received += req.tasks.length;
      if (dispatch) for (const t of req.tasks) dispatch(t.taskGuid);
      return {};
    },
  });
  const port = await server.listen("127.0.0.1:0");
  return {
    address: `127.0.0.1:${port}`,
    received: () => received,
    /** Where tasks go from now on (undefined: nowhere, they only count). */
    dispatchTo: (fn: ((guid: string) => void) | undefined) => (dispatch = fn),
    stop: () => server.shutdown(100),
  };
}

/** Batched lifecycles (see the top of this file). */
export async function batchedLifecycles(
  address: string,
  auctioneer: Awaited<ReturnType<typeof dispatchingAuctioneer>>,
  o: BatchedOptions,
  w: Window,
): Promise<RunResult> {
  const lifecycle = createClient(TaskLifecycleService, address);
  const cellBatchers = Array.from({ length: o.cells }, (_, i) => {
    const cellId = `sim-cell-${i}`;
    const b = new Batcher<CellItem, LifecycleResult>(
      async (items) => (await lifecycle.lifecycleBatch({ cellId, items })).results.map(lifecycleResult),
      o.cellFlushMs,
      1_000,
    );
    return b;
  });
  const completions = new Map<string, (err?: unknown) => void>();
  // Tasks on a cell: a task sent again (every convergence pass re-sends each PENDING task to the
  // auctioneer) is one the cell already holds, and it takes no notice, as a real cell does.
  const onCells = new Set<string>();
  // A simulated cell: claim, start, complete; then tell the waiting client.
  const runOnCell = async (guid: string) => {
    if (onCells.has(guid)) return;
    onCells.add(guid);
    const cell = cellBatchers[hash(guid) % o.cells]!;
    try {
      const start = await cell.add({ transition: { case: "start", value: { taskGuid: guid } } });
      if (start.case !== "start" || !start.shouldStart) throw new Error(`start of ${guid}: ${describe(start)}`);
      expectCase(await cell.add({ transition: { case: "running", value: { taskGuid: guid } } }), "running", guid);
      expectCase(
        await cell.add({ transition: { case: "complete", value: { taskGuid: guid, result: "ok" } } }),
        "complete",
        guid,
      );
      completions.get(guid)?.();
    } catch (err) {
      completions.get(guid)?.(err);
    } finally {
      onCells.delete(guid);
    }
  };
  auctioneer.dispatchTo((guid) => void runOnCell(guid));

  const clients = Array.from({ length: o.clients }, () => {
    const tasks = createClient(TaskService, address);
    const batcher = new Batcher<TaskItem, TaskResult>(
      async (items) => (await tasks.taskBatch({ items })).results.map(taskResult),
      o.clientFlushMs,
      1_000,
    );
    return { tasks, batcher };
  });

  let n = 0;
  let done = 0;
  let counting = false;
  let stopAt = Date.now() + w.warmupMs;
  const lifecycleOf = async (client: number) => {
    const { batcher } = clients[client]!;
    const guid = `blife-${client}-${n++}`;
    const completed = new Promise<void>((resolve, reject) =>
      completions.set(guid, (err) => (err ? reject(err as Error) : resolve())),
    );
    expectCase(await batcher.add({ call: { case: "desire", value: desireRequest(guid, client) } }), "desire", guid);
    await completed;
    completions.delete(guid);
    const [resolving, deleted] = await Promise.all([
      batcher.add({ call: { case: "resolving", value: { taskGuid: guid } } }),
      batcher.add({ call: { case: "delete", value: { taskGuid: guid } } }),
    ]);
    expectCase(resolving, "resolving", guid);
    expectCase(deleted, "delete", guid);
    if (counting) done++;
  };
  const keepGoing = async (client: number) => {
    while (Date.now() < stopAt) await lifecycleOf(client);
  };
  const calls = () => cellBatchers.reduce((s, b) => s + b.calls, 0) + clients.reduce((s, c) => s + c.batcher.calls, 0);

  // Warm up with every window slot busy, then measure while they keep going.
  const runners = clients.flatMap((_, c) => Array.from({ length: o.window }, () => keepGoing(c)));
  await new Promise((r) => setTimeout(r, w.warmupMs));
  stopAt = Infinity;
  counting = true;
  const calls0 = calls();
  w.onStart?.();
  await new Promise((r) => setTimeout(r, w.seconds * 1000));
  w.onEnd?.();
  counting = false;
  const measuredDone = done;
  const measuredCalls = calls() - calls0;
  stopAt = 0;
  await Promise.all(runners);
  auctioneer.dispatchTo(undefined);
  for (const c of clients) c.tasks.close();
  lifecycle.close();
  return { rate: measuredDone / w.seconds, callsPerLifecycle: measuredCalls / Math.max(1, measuredDone) };
}

type TaskResult = ReturnType<typeof taskResult>;
type LifecycleResult = ReturnType<typeof lifecycleResult>;

function taskResult(r: { result: { case?: string; value?: unknown } }) {
  return { case: r.result.case, value: r.result.value };
}

function lifecycleResult(r: { result: { case?: string; value?: unknown } }) {
  const value = r.result.value as { shouldStart?: boolean } | undefined;
  return { case: r.result.case, value, shouldStart: value?.shouldStart === true };
}

function expectCase(r: { case?: string; value?: unknown }, want: string, guid: string): void {
  if (r.case !== want) throw new Error(`${want} of ${guid}: ${describe(r)}`);
}

function describe(r: { case?: string; value?: unknown }): string {
  return r.case === "error" ? JSON.stringify(r.value) : String(r.case);
}

function desireRequest(taskGuid: string, client: number) {
  return {
    taskGuid,
    domain: `bench-${client % 4}`,
    rootFs: "docker:///diego/busybox",
    memoryMb: 64,
    action: { action: { case: "run" as const, value: { path: "/bin/true", user: "root" } } },
  };
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
  return h >>> 0;
}

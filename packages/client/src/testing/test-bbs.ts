import { create } from "@bufbuild/protobuf";
import { startBbs, type BbsConfig, type RunningBbs } from "@diego/bbs";
import { GrpcServer, createClient, createLogger, type Logger, type TlsFiles } from "@diego/kit";
import { DiegoError, taskNotFound } from "@diego/models";
import { CellPresenceSchema, CellRegistryService, TaskState, auctioneerv1, type Task } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { DiegoClient } from "../diego-client.js";
import { BbsProxy } from "./bbs-proxy.js";
import {
  DEFAULT_CELL,
  PresenceHeartbeat,
  SimulatedCell,
  type SimulatedCellSpec,
  type SimulatedOutcome,
  type SimulatedRun,
} from "./simulated-cell.js";

export interface TestBbsOptions {
  /** The BBS's gRPC address; default 127.0.0.1:0 (a free port). */
  listenAddress?: string;
  /** Mutual TLS: the BBS's CA, certificate and key (scripts/make-certs: ca.crt, bbs.crt, bbs.key). */
  tls?: TlsFiles;
  /** With `tls`: the certificate its own client calls use (a client identity, e.g. client.crt); default `tls`. */
  clientTls?: TlsFiles;
  /** Cells simulated from the start; more start on first use (see `cell`). */
  cells?: SimulatedCellSpec[];
  /** Any other BBS setting, e.g. `{ store: "etcd", etcdEndpoints, etcdPrefix }` to keep tasks across a restart. */
  bbs?: Partial<BbsConfig>;
  /** Default: silent. */
  logger?: Logger;
}

type PresenceInit = MessageInitShape<typeof CellPresenceSchema>;

/**
 * The real BBS of @diego/bbs, started in-process on its in-memory task store, for testing programs
 * that use @diego/client or the diego CLI without etcd, an auctioneer or Docker. Only the parts
 * around it are simulated, and they talk to it over gRPC like the real ones:
 *
 * - an auctioneer: the BBS is pointed at a small AuctioneerService that takes each TaskWork, reads
 *   the task (GetTask) and, when `autoRun` returns a plan for it, hands it to that plan's cell;
 * - cells (`SimulatedCell`): they heartbeat their presence, claim, run and complete tasks through
 *   TaskLifecycleService, and serve CellRepService (TaskLogs, CancelTask) to the BBS.
 *
 * A test drives a task by hand through a cell (`start`, `running`, `log`, `complete`), reads tasks
 * through the public API (`task`, `has`), and can put a `proxy()` in front of the BBS that drops
 * WatchTasks events.
 */
export class TestBbs {
  /** When set, every desired task it returns a plan for is claimed, run and completed as the plan says (undefined: left PENDING). */
  autoRun: ((task: Task) => SimulatedRun | undefined) | undefined;

  private readonly cells = new Map<string, SimulatedCell>();
  private readonly starting = new Map<string, Promise<SimulatedCell>>();
  private readonly placing = new Set<Promise<void>>();
  private readonly announced: PresenceHeartbeat[] = [];
  private readonly proxies: BbsProxy[] = [];
  private readonly client: DiegoClient;
  private stopped = false;

  private constructor(
    private readonly bbs: RunningBbs,
    private readonly auctioneer: GrpcServer,
    private readonly tls: TlsFiles | undefined,
    private readonly logger: Logger,
    clientTls: TlsFiles | undefined,
  ) {
    this.client = new DiegoClient({ address: bbs.address, tls: clientTls, timeoutMs: 10_000 });
  }

  /** host:port of the BBS. */
  get address(): string {
    return this.bbs.address;
  }

  static async start(options: TestBbsOptions = {}): Promise<TestBbs> {
    const logger = options.logger ?? createLogger("test-bbs", "silent");
    const tls = options.tls;
    let self: TestBbs | undefined;
    const auctioneer = new GrpcServer({ logger, tls });
    auctioneer.add(auctioneerv1.AuctioneerService, {
      requestTaskAuctions: (req) => {
        for (const work of req.tasks) self?.place(work.taskGuid);
        return {};
      },
    });
    const auctioneerPort = await auctioneer.listen("127.0.0.1:0");
    let bbs: RunningBbs;
    try {
      bbs = await startBbs(
        {
          store: "memory",
          listenAddress: options.listenAddress ?? "127.0.0.1:0",
          statusAddress: "127.0.0.1:0",
          ...(tls ? { tlsCaFile: tls.caFile, tlsCertFile: tls.certFile, tlsKeyFile: tls.keyFile } : {}),
          ...options.bbs,
          auctioneerAddress: `127.0.0.1:${auctioneerPort}`,
        },
        { logger },
      );
    } catch (err) {
      await auctioneer.shutdown(0);
      throw err;
    }
    self = new TestBbs(bbs, auctioneer, tls, logger, options.clientTls ?? tls);
    try {
      await self.reachable();
      for (const spec of options.cells ?? []) await self.cell(spec.cellId, spec);
    } catch (err) {
      await self.stop();
      throw err;
    }
    return self;
  }

  // ---- reading, through the public API ----

  /** The task as GetTask returns it, or undefined when there is none. */
  async task(taskGuid: string): Promise<Task | undefined> {
    try {
      return await this.client.get(taskGuid);
    } catch (err) {
      if (DiegoError.is(err, "NOT_FOUND")) return undefined;
      throw err;
    }
  }

  async has(taskGuid: string): Promise<boolean> {
    return (await this.task(taskGuid)) !== undefined;
  }

  /** Open WatchTasks streams (each subscribed: it gets every event from now on). */
  get watchers(): number {
    return this.bbs.hub.size;
  }

  // ---- the cells' side, for tests that drive a task by hand ----

  /**
   * The simulated cell with this id, started (and heartbeating) on first use, with `spec` as its
   * presence or DEFAULT_CELL's.
   */
  cell(cellId: string, spec?: SimulatedCellSpec): Promise<SimulatedCell> {
    let cell = this.starting.get(cellId);
    if (!cell) {
      cell = SimulatedCell.start(spec ?? { ...DEFAULT_CELL, cellId }, {
        bbsAddress: this.address,
        tls: this.tls,
        logger: this.logger,
      });
      this.starting.set(cellId, cell);
      cell.then(
        (c) => this.cells.set(cellId, c),
        () => this.starting.delete(cellId),
      );
    }
    return cell;
  }

  /** StartTask from the cell: PENDING → CLAIMED; returns the full task. */
  async start(taskGuid: string, cellId = "cell-1"): Promise<Task> {
    return (await this.cell(cellId)).claim(taskGuid);
  }

  /** RunningTask from the cell: CLAIMED → RUNNING. */
  async running(taskGuid: string, cellId = "cell-1"): Promise<void> {
    await (await this.cell(cellId)).running(taskGuid);
  }

  /** CompleteTask from the cell that claimed the task; its log stream ends. */
  async complete(taskGuid: string, outcome: SimulatedOutcome = {}): Promise<void> {
    await (await this.cellOf(taskGuid)).complete(taskGuid, outcome);
  }

  /** A line of output of a claimed task, on its cell (clients read it through the BBS's TaskLogs). */
  log(taskGuid: string, message: string, stream: "STDOUT" | "STDERR" = "STDOUT"): void {
    const cell = [...this.cells.values()].find((c) => c.has(taskGuid));
    if (!cell) throw new Error(`no simulated cell has claimed task ${taskGuid}`);
    cell.log(taskGuid, message, stream);
  }

  /**
   * Announces a cell that lives elsewhere: its presence, address included, is heartbeated as given
   * until stop, and nothing answers at that address (for tests that only list cells).
   */
  async announceCell(presence: PresenceInit): Promise<void> {
    const registry = createClient(CellRegistryService, this.address, { tls: this.tls });
    const heartbeat = new PresenceHeartbeat(registry, create(CellPresenceSchema, presence), 10_000, this.logger);
    this.announced.push(heartbeat);
    await heartbeat.start();
  }

  /**
   * Removes the task from the BBS's store whatever its state, as an operator wiping it from etcd would
   * (watchers get a `removed` event). No RPC does this, by design.
   */
  async wipe(taskGuid: string): Promise<void> {
    await this.bbs.store.apply(taskGuid, (current) => {
      if (!current) throw taskNotFound(taskGuid);
      return { kind: "delete" };
    });
  }

  /** A proxy in front of this BBS (stopped with it), e.g. to drop WatchTasks events. */
  async proxy(): Promise<BbsProxy> {
    const proxy = await BbsProxy.start(this.address, { tls: this.tls });
    this.proxies.push(proxy);
    return proxy;
  }

  /** Stops the simulated runs, the cells (they deregister), the proxies, the BBS and its auctioneer. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.allSettled([...this.placing]);
    const cells = await Promise.allSettled([...this.starting.values()]);
    await Promise.all(cells.map((c) => (c.status === "fulfilled" ? c.value.stop() : undefined)));
    await Promise.all(this.announced.map((h) => h.stop()));
    await Promise.all(this.proxies.map((p) => p.stop()));
    this.client.close();
    await this.bbs.stop();
    await this.auctioneer.shutdown(200);
  }

  // ---- the auctioneer's side ----

  /** A TaskWork from the BBS: a PENDING task with a plan goes to the plan's cell. */
  private place(taskGuid: string): void {
    if (this.stopped) return;
    const placing = (async () => {
      const task = await this.task(taskGuid);
      if (!task || task.state !== TaskState.PENDING) return;
      const plan = this.autoRun?.(task);
      if (!plan) return;
      (await this.cell(plan.cellId ?? "cell-1")).run(taskGuid, plan);
    })().catch((err: unknown) =>
      this.logger.warn({ taskGuid, err: (err as Error).message }, "simulated placement failed"),
    );
    this.placing.add(placing);
    void placing.finally(() => this.placing.delete(placing));
  }

  /**
   * Resolves once a call reaches the BBS. A client in this process that was connected to the same
   * address before (a BBS restarted on its port) shares its connection, which may still be waiting
   * out its reconnect backoff; calls fail fast until it is connected again.
   */
  private async reachable(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.client.listCells({ timeoutMs: 5_000 });
        return;
      } catch (err) {
        if (!DiegoError.is(err, "UNAVAILABLE") || Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
  }

  private async cellOf(taskGuid: string): Promise<SimulatedCell> {
    const claimed = [...this.cells.values()].find((c) => c.has(taskGuid));
    if (claimed) return claimed;
    const task = await this.task(taskGuid);
    if (!task) throw taskNotFound(taskGuid);
    if (!task.cellId) throw new DiegoError("FAILED_PRECONDITION", `task ${taskGuid} is on no cell`);
    return this.cell(task.cellId);
  }
}

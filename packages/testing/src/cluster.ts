// The one in-process cluster of real parts: the BBS (on its in-memory task store unless told otherwise), the
// auctioneer, which places every desired task on the live cells as in production, and real cells (on the fake
// runtime unless told otherwise), in plaintext or mutual TLS. The helpers use the public gRPC API (DesireTask,
// GetTask, WatchTasks, ListCells, FetchLock); only `wipe` reaches into the BBS's store, as an operator would.
import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { auctioneerConfig, startAuctioneer, type AuctioneerHandle } from "@diego/auctioneer";
import { startBbs, type BbsConfig, type RunningBbs } from "@diego/bbs";
import {
  cellConfig,
  FakeRuntime,
  startCell,
  type CellConfig,
  type CellOverrides,
  type ContainerRuntime,
  type RunningCell,
} from "@diego/cell";
import { createClient, createLogger, type ServiceClient, type TlsFiles } from "@diego/kit";
import { DiegoError, taskNotFound } from "@diego/models";
import {
  CellRegistryService,
  CellService,
  LockService,
  TaskLifecycleService,
  TaskService,
  TaskState,
  type CellPresence,
  type Task,
  type TaskCreateRequestSchema,
} from "@diego/proto";
import { GrpcFaultProxy } from "./grpc-fault-proxy.js";

type TaskInit = MessageInitShape<typeof TaskCreateRequestSchema>;

/** A state a task entered, as the BBS's WatchTasks stream told it. */
export interface Transition {
  taskGuid: string;
  state: TaskState;
}

const PROBE_DOMAIN = "cluster-probe";

/** A real cell started by the cluster. */
export interface ClusterCell {
  cellId: string;
  config: CellConfig;
  /** The runtime it runs containers on (a FakeRuntime unless `docker` was asked for). */
  runtime: ContainerRuntime | undefined;
  running: RunningCell;
}

export interface ClusterCellOptions {
  /** Run on the Docker engine instead of a FakeRuntime. */
  docker?: boolean;
  /** A runtime of the test's own (e.g. a FakeRuntime it inspects). */
  runtime?: ContainerRuntime;
  logger?: CellOverrides["logger"];
}

export interface ClusterOptions {
  /** The BBS's gRPC address; default 127.0.0.1:0 (a free port). */
  listenAddress?: string;
  /** Any other BBS setting, e.g. `{ store: "etcd", etcdEndpoints, etcdPrefix }` to keep tasks across a restart. */
  bbs?: Partial<BbsConfig>;
  /**
   * Mutual TLS: `server(name)` gives the files of "bbs", "auctioneer" and each cell id (scripts/make-certs:
   * ca.crt, <name>.crt, <name>.key); `client` those of a client identity, for the cluster's own calls.
   */
  tls?: { server: (name: string) => TlsFiles; client: TlsFiles };
  /** Start the auctioneer (default true). Without it desired tasks stay PENDING, as with the auctioneer down. */
  auctioneer?: boolean;
}

/** The files of a scripts/make-certs directory, by name: `ca.crt` with `<name>.crt` and `<name>.key`. */
export function certFiles(dir: string, name: string): TlsFiles {
  return { caFile: join(dir, "ca.crt"), certFile: join(dir, `${name}.crt`), keyFile: join(dir, `${name}.key`) };
}

export class InProcessCluster {
  readonly tasks: ServiceClient<(typeof TaskService)["method"]>;
  readonly lifecycle: ServiceClient<(typeof TaskLifecycleService)["method"]>;
  readonly registry: ServiceClient<(typeof CellRegistryService)["method"]>;
  readonly cells: ServiceClient<(typeof CellService)["method"]>;
  private readonly locks: ServiceClient<(typeof LockService)["method"]>;
  /** Every state every task entered since the cluster started, in order. */
  readonly transitions: Transition[] = [];
  private readonly changes = new EventEmitter();
  private readonly watching = new AbortController();
  private auctioneer?: AuctioneerHandle;
  private readonly started: RunningCell[] = [];
  private readonly proxies: GrpcFaultProxy[] = [];
  /** Work dirs the cluster made for its cells (removed on stop). */
  private readonly workDirs: string[] = [];
  private watchOpen = false;
  private stopping?: Promise<void>;

  private constructor(
    private readonly bbs: RunningBbs,
    private readonly tls: ClusterOptions["tls"],
  ) {
    const client = { tls: tls?.client };
    this.tasks = createClient(TaskService, bbs.address, client);
    this.lifecycle = createClient(TaskLifecycleService, bbs.address, client);
    this.registry = createClient(CellRegistryService, bbs.address, client);
    this.cells = createClient(CellService, bbs.address, client);
    // LockService answers the auctioneer only.
    this.locks = createClient(LockService, bbs.address, { tls: tls?.server("auctioneer") });
    this.changes.setMaxListeners(0);
  }

  /** host:port of the BBS's gRPC server. */
  get address(): string {
    return this.bbs.address;
  }

  /** The client identity's TLS files the cluster was started with (undefined: plaintext). */
  get clientTls(): TlsFiles | undefined {
    return this.tls?.client;
  }

  /** Open WatchTasks streams of the BBS, the cluster's own watch left out. */
  get watchers(): number {
    return Math.max(0, this.bbs.hub.size - (this.watchOpen ? 1 : 0));
  }

  /** A BBS, a watch on every task, then (unless `auctioneer: false`) an auctioneer holding the `auctioneer` lock. */
  static async start(options: ClusterOptions = {}): Promise<InProcessCluster> {
    const level = process.env.DIEGO_TEST_LOG ?? "silent";
    const tls = options.tls;
    const bbs = await startBbs(
      {
        store: "memory",
        listenAddress: options.listenAddress ?? "127.0.0.1:0",
        statusAddress: "127.0.0.1:0",
        ...tlsSettingsOf(tls?.server("bbs")),
        ...options.bbs,
      },
      { logger: createLogger("bbs", level) },
    );
    const cluster = new InProcessCluster(bbs, tls);
    try {
      await cluster.reachable();
      cluster.watch();
      await cluster.probeWatch();
      if (options.auctioneer !== false) await cluster.startAuctioneer();
      return cluster;
    } catch (err) {
      await cluster.stop();
      throw err;
    }
  }

  /**
   * Resolves once a call reaches the BBS. A client in this process that was connected to the same address
   * before (a BBS restarted on its port) shares its connection, which may still be waiting out its reconnect
   * backoff; calls fail fast until it is connected again.
   */
  private async reachable(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.cells.listCells({}, { timeoutMs: 5_000 });
        return;
      } catch (err) {
        if (!DiegoError.is(err, "UNAVAILABLE") || Date.now() > deadline) throw err;
        await sleep(20);
      }
    }
  }

  /** Starts the auctioneer and waits until it holds the `auctioneer` lock (the BBS then sends it every desired task). */
  async startAuctioneer(): Promise<void> {
    const level = process.env.DIEGO_TEST_LOG ?? "silent";
    this.auctioneer = await startAuctioneer(
      auctioneerConfig({
        listenAddress: "127.0.0.1:0",
        statusAddress: "127.0.0.1:0",
        bbsAddress: this.address,
        ...tlsSettingsOf(this.tls?.server("auctioneer")),
      }),
      { logger: createLogger("auctioneer", level) },
    );
    const advertised = this.auctioneer.advertiseAddress;
    await until(
      async () => (await this.locks.fetchLock({ key: "auctioneer" }).catch(() => undefined))?.value === advertised,
      30_000,
      "the auctioneer to hold its lock",
    );
  }

  private watch(): void {
    this.watchOpen = true;
    void (async () => {
      for await (const ev of this.tasks.watchTasks({ domain: "" }, { signal: this.watching.signal })) {
        const task =
          ev.event.case === "created"
            ? ev.event.value.task
            : ev.event.case === "changed"
              ? ev.event.value.after
              : undefined;
        if (task) this.transitions.push({ taskGuid: task.taskGuid, state: task.state });
        const guid = task?.taskGuid ?? (ev.event.case === "removed" ? ev.event.value.task?.taskGuid : undefined);
        if (guid) this.changes.emit("change", guid);
      }
    })()
      .catch(() => undefined)
      .finally(() => (this.watchOpen = false));
  }

  /**
   * WatchTasks only streams changes made after it subscribed, and says nothing when it has. Until the
   * watch shows one, desire a throwaway task in its own domain (no auctioneer runs yet, so none is
   * placed), then remove them all.
   */
  private async probeWatch(): Promise<void> {
    const probes: string[] = [];
    const seen = new Promise<void>((resolve) => {
      const on = (guid: string) => {
        if (!probes.includes(guid)) return;
        this.changes.off("change", on);
        resolve();
      };
      this.changes.on("change", on);
    });
    const until = Date.now() + 30_000;
    for (let shown = false; !shown;) {
      if (Date.now() > until) throw new Error("the BBS's WatchTasks stream never showed a change");
      const guid = `probe-${randomBytes(4).toString("hex")}`;
      probes.push(guid);
      await this.tasks.desireTask({
        taskGuid: guid,
        domain: PROBE_DOMAIN,
        rootFs: "docker:///diego/busybox",
        action: { action: { case: "run", value: { path: "/bin/true" } } },
      });
      shown = await Promise.race([seen.then(() => true), sleep(250).then(() => false)]);
    }
    for (const guid of probes) {
      await this.tasks.cancelTask({ taskGuid: guid });
      await this.tasks.resolvingTask({ taskGuid: guid });
      await this.tasks.deleteTask({ taskGuid: guid });
    }
  }

  /** TaskService.DesireTask; the auctioneer then places the task on a live cell. */
  async desire(init: TaskInit): Promise<Task> {
    return (await this.tasks.desireTask(init)).task!;
  }

  /** TaskService.GetTask; undefined when the BBS has no such task. */
  async get(guid: string): Promise<Task | undefined> {
    try {
      return await this.tasks.getTask({ taskGuid: guid });
    } catch (err) {
      if (DiegoError.is(err) && err.code === "NOT_FOUND") return undefined;
      throw err;
    }
  }

  /** Waits until the task (GetTask, re-read on every change the watch shows) satisfies `ok`. */
  async waitFor(guid: string, ok: (t: Task | undefined) => boolean, timeoutMs = 60_000): Promise<Task | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      // Listen before reading, so a change between the read and the wait is not missed.
      let changed!: () => void;
      const change = new Promise<void>((resolve) => (changed = resolve));
      const on = (g: string) => g === guid && changed();
      this.changes.on("change", on);
      try {
        const t = await this.get(guid);
        if (ok(t)) return t;
        const left = deadline - Date.now();
        if (left <= 0)
          throw new Error(`task ${guid} did not reach the expected state; now ${t ? TaskState[t.state] : "absent"}`);
        // The re-read every second is a safety net only: the watch wakes this up on each change.
        await Promise.race([change, sleep(Math.min(left, 1_000))]);
      } finally {
        this.changes.off("change", on);
      }
    }
  }

  async completed(guid: string, timeoutMs?: number): Promise<Task> {
    return (await this.waitFor(guid, (t) => t?.state === TaskState.COMPLETED, timeoutMs))!;
  }

  /** The states the task entered, in order (PENDING first). */
  statesOf(guid: string): TaskState[] {
    return this.transitions.filter((x) => x.taskGuid === guid).map((x) => x.state);
  }

  /** The cell's presence in CellService.ListCells, if it is live. */
  async presence(cellId: string): Promise<CellPresence | undefined> {
    return (await this.cells.listCells({})).cells.find((c) => c.cellId === cellId);
  }

  /** Waits until the cell is live in the BBS (at `address` when given: a restarted cell replaces its old presence). */
  async waitForCell(cellId: string, address?: string, timeoutMs = 30_000): Promise<CellPresence> {
    let found: CellPresence | undefined;
    await until(
      async () => {
        found = await this.presence(cellId);
        return !!found && (address === undefined || found.address === address);
      },
      timeoutMs,
      `cell ${cellId} to heartbeat`,
    );
    return found!;
  }

  /**
   * Starts a real cell of this cluster (stopped with it) and waits until the BBS lists it. `values` are cell
   * settings; the defaults give it 4 GiB of memory, 8 GiB of disk, free ports and a work dir of its own
   * (removed on stop), and under TLS the files `tls.server(cellId)`.
   */
  async startCell(values: Partial<CellConfig> = {}, options: ClusterCellOptions = {}): Promise<ClusterCell> {
    const cellId = values.cellId ?? `cell-${randomBytes(4).toString("hex")}`;
    const workDir = values.workDir ?? join(tmpdir(), `diego-cell-test-${cellId}-${randomBytes(4).toString("hex")}`);
    if (!values.workDir) this.workDirs.push(workDir);
    const config = cellConfig({
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      bbsAddress: this.address,
      memoryMb: 4096,
      diskMb: 8192,
      workDir,
      logLevel: process.env.DIEGO_TEST_LOG ?? "silent",
      gracefulShutdownInterval: 1000,
      drainTimeout: 2000,
      ...tlsSettingsOf(this.tls?.server(cellId)),
      ...values,
      cellId,
    });
    const runtime = options.docker ? undefined : (options.runtime ?? new FakeRuntime());
    const running = await startCell(config, { runtime, logger: options.logger });
    this.started.push(running);
    try {
      await this.waitForCell(cellId, running.address);
    } catch (err) {
      await running();
      throw err;
    }
    return { cellId, config, runtime, running };
  }

  /** Stops the auctioneer (releasing its lock): from now on desired tasks stay PENDING until a test places them. */
  async stopAuctioneer(): Promise<void> {
    await this.auctioneer?.stop();
    this.auctioneer = undefined;
  }

  /**
   * A fault proxy in front of the BBS's public API (TaskService, CellService), in the cluster's TLS, stopped
   * with the cluster: to fail, delay or cut chosen calls of a client pointed at `proxy.address`.
   */
  async proxy(): Promise<GrpcFaultProxy> {
    const proxy = await GrpcFaultProxy.start(this.address, [TaskService, CellService], {
      tls: this.tls?.server("bbs"),
    });
    this.proxies.push(proxy);
    return proxy;
  }

  /**
   * Removes the task from the BBS's store whatever its state, as an operator wiping it from etcd would
   * (watchers get a `removed` event). No RPC does this, by design.
   */
  async wipe(guid: string): Promise<void> {
    await this.bbs.store.apply(guid, (current) => {
      if (!current) throw taskNotFound(guid);
      return { kind: "delete" };
    });
  }

  /** Stops the proxies, the cells, the auctioneer and the BBS; a second call waits for the first. */
  stop(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    await Promise.all(this.proxies.map((p) => p.stop()));
    await Promise.all(this.started.map((c) => c()));
    this.watching.abort();
    await this.auctioneer?.stop();
    for (const c of [this.tasks, this.lifecycle, this.registry, this.cells, this.locks]) c.close();
    await this.bbs.stop();
    await Promise.all(this.workDirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

/** A service's TLS settings from its files (none: plaintext). */
function tlsSettingsOf(files: TlsFiles | undefined) {
  return files ? { tlsCaFile: files.caFile, tlsCertFile: files.certFile, tlsKeyFile: files.keyFile } : {};
}

/** A pause that does not keep the process alive (a waiter may stop listening before it ends). */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import {
  createLogger,
  EgressPolicy,
  GrpcServer,
  ServiceMetrics,
  StatusServer,
  tlsFilesOf,
  type Logger,
} from "@diego/kit";
import { nowNanos } from "@diego/models";
import { AuctionRequester } from "./auctioneer-client/auction-requester.js";
import { CallbackSender } from "./callbacks/callback-sender.js";
import { CellLiveness } from "./cells/cell-liveness.js";
import { EtcdPresenceStore } from "./cells/etcd-presence-store.js";
import { MemoryPresenceStore } from "./cells/memory-presence-store.js";
import type { PresenceStore } from "./cells/presence-store.js";
import { bbsConfig, type BbsConfig } from "./config.js";
import { TaskController } from "./controller/task-controller.js";
import { CellLossReaper } from "./convergence/cell-loss-reaper.js";
import { Converger } from "./convergence/converger.js";
import { EtcdConnection } from "./etcd/etcd-connection.js";
import { Leases } from "./etcd/leases.js";
import { EventHub } from "./events/event-hub.js";
import { GrpcClients } from "./grpc-clients.js";
import { ConsoleServer } from "@diego/console";
import { addBbsServices, clientApi } from "./handlers/index.js";
import { clientScopesFrom } from "./handlers/client-scope.js";
import { Keys } from "./keys.js";
import { EtcdLeaderElection } from "./leader/etcd-leader-election.js";
import { StaticLeadership, type Leadership } from "./leader/leadership.js";
import { EtcdLockStore } from "./locks/etcd-lock-store.js";
import { EtcdLogTailStore } from "./log-tails/etcd-log-tail-store.js";
import type { LogTailStore } from "./log-tails/log-tail-store.js";
import { MemoryLogTailStore } from "./log-tails/memory-log-tail-store.js";
import type { LockStore } from "./locks/lock-store.js";
import { MemoryLockStore } from "./locks/memory-lock-store.js";
import { BbsMetrics, txnObserver } from "./metrics/bbs-metrics.js";
import { EtcdTaskStore } from "./store/etcd-task-store.js";
import { TaskSealer } from "./store/task-sealer.js";
import { MemoryTaskStore } from "./store/memory-task-store.js";
import type { TaskStore } from "./store/task-store.js";

export interface RunningBbs {
  /** host:port of the gRPC server as bound (the real port when 0 was asked for). */
  address: string;
  /** host:port of the HTTP status server. */
  statusAddress: string;
  /** URL of the web console, when it is on. */
  consoleUrl?: string;
  instanceId: string;
  config: BbsConfig;
  store: TaskStore;
  controller: TaskController;
  converger: Converger;
  /** WatchTasks subscribers. */
  hub: EventHub;
  isLeader(): boolean;
  /** Drains and stops everything, in reverse order of starting. */
  stop(): Promise<void>;
}

export interface StartBbsOptions {
  logger?: Logger;
}

let inProcessCount = 0;

/**
 * Starts a BBS from a configuration (missing settings take their defaults): the etcd (or memory)
 * stores, the gRPC services, the status server, callbacks, auction requests, leader election and
 * convergence. Used by main.ts and, in-process, by tests.
 */
export async function startBbs(overrides: Partial<BbsConfig> = {}, options: StartBbsOptions = {}): Promise<RunningBbs> {
  // Instances in one process (tests) must not share a leader-election identity.
  const instanceId = overrides.instanceId ?? `${bbsConfig().instanceId}-${++inProcessCount}`;
  const config = bbsConfig({ ...overrides, instanceId });
  const logger = options.logger ?? createLogger("bbs", config.logLevel);
  const tls = tlsFilesOf(config);
  const stoppers: (() => Promise<void> | void)[] = [];
  const stop = async () => {
    for (const s of stoppers.splice(0).reverse()) {
      try {
        await s();
      } catch (err) {
        logger.error({ err }, "error while stopping");
      }
    }
  };

  try {
    const serviceMetrics = new ServiceMetrics("bbs");
    let taskStore: TaskStore | undefined;
    const metrics = new BbsMetrics(serviceMetrics.registry, () => taskStore?.countByState() ?? new Map());
    let presence: PresenceStore;
    let sealer: TaskSealer | undefined;
    let locks: LockStore;
    let logTails: LogTailStore;
    let leadership: Leadership;
    let etcdConnection: EtcdConnection | undefined;
    if (config.store === "memory") {
      taskStore = new MemoryTaskStore();
      presence = new MemoryPresenceStore();
      locks = new MemoryLockStore();
      logTails = new MemoryLogTailStore();
      leadership = new StaticLeadership(instanceId);
    } else {
      const etcd = new EtcdConnection({
        endpoints: config.etcdEndpoints,
        tls: config.etcdCaFile
          ? { caFile: config.etcdCaFile, certFile: config.etcdCertFile, keyFile: config.etcdKeyFile }
          : undefined,
        requestTimeoutMs: config.etcdRequestTimeout,
        probeIntervalMs: 1_000,
        logger,
      });
      stoppers.push(() => etcd.close());
      await etcd.start();
      etcdConnection = etcd;
      const keys = new Keys(config.etcdPrefix);
      sealer = sealerOf(config);
      const leases = new Leases(etcd);
      taskStore = new EtcdTaskStore({
        etcd,
        keys,
        logger,
        maxAttempts: config.maxCasAttempts,
        maxBatch: config.writeBatchSize,
        maxInFlight: config.writeConcurrency,
        observeTxn: txnObserver(metrics),
        onPruned: () => metrics.convergencePruned.inc(),
        sealer,
      });
      presence = new EtcdPresenceStore(etcd, leases, keys, logger);
      locks = new EtcdLockStore(etcd, leases, keys);
      logTails = new EtcdLogTailStore(etcd, keys);
      leadership = new EtcdLeaderElection({
        etcd,
        key: keys.leader,
        instanceId,
        ttlMs: config.lockTtl,
        retryIntervalMs: config.lockRetryInterval,
        logger,
      });
    }
    const store: TaskStore = taskStore;
    await store.start();
    stoppers.push(() => store.stop());
    if (config.rewriteTasks && sealer) await rewriteSecrets(store, sealer, logger);

    const egress = await bbsEgressPolicy(config);
    const clients = new GrpcClients({ tls, defaultTimeoutMs: config.communicationTimeout });
    stoppers.push(() => clients.closeAll());

    const auction = new AuctionRequester({
      resolveAddress: async () => config.auctioneerAddress || (await locks.fetch("auctioneer"))?.value || undefined,
      clients,
      logger,
      metrics,
    });
    stoppers.push(() => auction.stop());

    const controller = new TaskController({
      store,
      presence,
      logTails,
      auction,
      // The sender needs the controller's transitions; it exists before any task can complete.
      callbacks: { submit: (task) => sender.submit(task) },
      clients,
      metrics,
      logger,
      now: nowNanos,
      maxTaskRetries: config.maxTaskRetries,
      egress,
      canStoreSecrets: config.store === "memory" || sealer !== undefined,
      resources: {
        defaultMemoryMb: config.defaultMemoryMb,
        maxMemoryMb: config.maxMemoryMb,
        defaultDiskMb: config.defaultDiskMb,
        maxDiskMb: config.maxDiskMb,
      },
    });
    const sender = new CallbackSender({
      transitions: controller.callbackTransitions,
      workers: config.taskCallbackWorkers,
      timeoutMs: config.callbackTimeout,
      egress,
      logger,
      metrics,
    });
    stoppers.push(() => sender.stop());

    const hub = new EventHub(store, {
      bufferSize: config.watchBufferSize,
      bufferBytes: config.watchBufferBytes,
      historySize: config.watchHistorySize,
      historyBytes: config.watchHistoryBytes,
      maxWatchersPerCaller: config.maxWatchersPerCaller,
    });
    hub.start();

    const server = new GrpcServer({
      logger,
      tls,
      insecure: config.insecure,
      observe: serviceMetrics.observeGrpc,
      maxReceiveBytes: config.grpcMaxReceiveBytes,
    });
    const scopes = clientScopesFrom(config);
    const handlerDeps = { controller, store, hub, presence, locks, clients, logger, scopes };
    const api = clientApi(handlerDeps);
    addBbsServices(server, handlerDeps, api);
    const port = await server.listen(config.listenAddress);
    stoppers.push(() => server.shutdown());
    // Runs before the server's shutdown: ends the WatchTasks streams, which would otherwise hold it.
    stoppers.push(() => hub.stop());
    const address = `${hostOf(config.listenAddress)}:${port}`;

    const status = new StatusServer({ registry: serviceMetrics.registry, ready: () => store.healthy() });
    const statusPort = await status.listen(config.statusAddress);
    stoppers.push(() => status.close());
    const statusAddress = `${hostOf(config.statusAddress)}:${statusPort}`;

    // gRPC health follows readiness: NOT_SERVING while etcd is unreachable.
    let serving = true;
    const readiness = setInterval(() => {
      const ready = store.healthy();
      if (ready !== serving) {
        serving = ready;
        server.setServing(ready);
        logger[ready ? "info" : "warn"]({ ready }, ready ? "ready" : "not ready: the task store does not answer");
      }
    }, 500);
    readiness.unref();
    stoppers.push(() => clearInterval(readiness));

    // Cells heartbeat through the BBS: before declaring any lost, tell their death from our isolation.
    const liveness = new CellLiveness({
      defaultTtlMs: config.cellPresenceTtl,
      holdMaxMs: config.cellLossHoldMax,
      logger,
      onHold: (held, reason) => metrics.setCellsHeld(held, reason),
    });
    etcdConnection?.onHealthChange((up) => up && liveness.markRecovered("etcd answers again"));
    // Registered before the converger's and the reaper's listeners, so the mark precedes their decisions.
    leadership.onChange((leader) => leader && liveness.markRecovered("leadership gained"));
    const stopWatchingPresence = presence.watch?.((event) => {
      if (event.kind === "all") liveness.sawList(event.cells);
      else if (event.kind === "present") liveness.sawPresent(event.cellId, event.ttlMs);
      else liveness.sawGone(event.cellId);
    });
    if (stopWatchingPresence) stoppers.push(stopWatchingPresence);
    const reaper = new CellLossReaper({
      liveness,
      store,
      controller,
      leadership,
      presenceKnown: () => store.healthy(),
      logger,
    });
    reaper.start();
    stoppers.push(() => reaper.stop());

    // The web console calls the same client API handlers, as its HTTP caller (docs/console.md).
    let consoleUrl: string | undefined;
    if (config.consoleAddress) {
      const consoleServer = new ConsoleServer(
        {
          tasks: api.tasks,
          cells: api.cells,
          leaders: async () => ({
            bbs: await leadership.leaderId().catch(() => undefined),
            auctioneer: (await locks.fetch("auctioneer").catch(() => undefined))?.value || undefined,
          }),
        },
        {
          address: config.consoleAddress,
          tls,
          insecure: config.insecure,
          allowCancel: config.consoleAllowCancel,
          logger,
        },
      );
      consoleUrl = await consoleServer.listen();
      stoppers.push(() => consoleServer.close());
    }

    const converger = new Converger({
      store,
      presence,
      liveness,
      controller,
      leadership,
      durations: {
        kickTaskDurationMs: config.kickTaskDuration,
        expirePendingTaskDurationMs: config.expirePendingTaskDuration,
        expireCompletedTaskDurationMs: config.expireCompletedTaskDuration,
      },
      intervalMs: config.convergeRepeatInterval,
      workers: config.convergenceWorkers,
      logger,
      metrics,
    });
    converger.start();
    stoppers.push(() => converger.stop());
    await leadership.start();
    // Stopping leadership first (it runs last) hands convergence to another instance at once.
    stoppers.push(() => leadership.stop());

    logger.info(
      {
        grpc: address,
        status: statusAddress,
        console: consoleUrl,
        store: config.store,
        etcd: config.store === "etcd" ? config.etcdEndpoints : undefined,
        prefix: config.etcdPrefix,
        instanceId,
        tls: Boolean(tls),
      },
      `BBS listening: gRPC on ${address}, HTTP status on ${statusAddress}${consoleUrl ? `, console at ${consoleUrl}` : ""}`,
    );
    return {
      address,
      statusAddress,
      consoleUrl,
      instanceId,
      config,
      store,
      controller,
      converger,
      hub,
      isLeader: () => leadership.isLeader(),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The encryption at rest of the configuration, or undefined without keys. */
function sealerOf(config: BbsConfig): TaskSealer | undefined {
  const ids = Object.keys(config.encryptionKeys);
  if (ids.length === 0) return undefined;
  const active = config.activeKeyId ?? (ids.length === 1 ? ids[0]! : "");
  if (!active) throw new Error("--encryption-keys holds several keys: --active-key-id must name the one that writes");
  return new TaskSealer(config.encryptionKeys, active);
}

/** Rewrites every stored task that carries secrets, so that each is sealed under the active key. */
async function rewriteSecrets(store: TaskStore, sealer: TaskSealer, logger: Logger): Promise<void> {
  let rewritten = 0;
  for (const task of await store.list({})) {
    if (!task.imagePassword && task.secretEnv.length === 0) continue;
    try {
      await store.apply(task.taskGuid, (current) => (current ? { kind: "put", task: current } : { kind: "delete" }));
      rewritten++;
    } catch (err) {
      logger.warn(
        { taskGuid: task.taskGuid, err: (err as Error).message },
        "could not rewrite a task under the active key",
      );
    }
  }
  logger.info(
    { rewritten, activeKeyId: sealer.activeKeyId },
    "tasks with secrets rewritten under the active encryption key",
  );
}

/** The operator's egress lists, and the addresses of the BBS's own etcd endpoints, always denied. */
async function bbsEgressPolicy(config: BbsConfig): Promise<EgressPolicy> {
  const etcd = config.store === "etcd" ? await endpointCidrs(config.etcdEndpoints) : [];
  return new EgressPolicy({ deny: [...config.egressDenyCidrs, ...etcd], allow: config.egressAllowCidrs });
}

async function endpointCidrs(endpoints: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const endpoint of endpoints) {
    let host: string;
    try {
      host = new URL(endpoint.includes("://") ? endpoint : `http://${endpoint}`).hostname.replace(/^\[|\]$/g, "");
    } catch {
      continue;
    }
    const addresses = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
    for (const a of addresses) out.push(`${a}/${isIP(a) === 6 ? 128 : 32}`);
  }
  return out;
}

function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(":"));
}

import { statfs } from "node:fs/promises";
import { hostname, networkInterfaces, totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import {
  createClient,
  EgressPolicy,
  createLogger,
  GrpcServer,
  ServiceMetrics,
  StatusServer,
  tlsFilesOf,
  type Logger,
  type ServiceImpl,
} from "@diego/kit";
import { CellRegistryService, TaskLifecycleService, TaskService, cellv1 } from "@diego/proto";
import { DownloadCache } from "./actions/download-cache.js";
import { cellIp } from "./actions/instance-env.js";
import { Cell } from "./cell.js";
import type { CellConfig } from "./config.js";
import { OutcomeJournal } from "./executor/outcome-journal.js";
import { OutcomeReporter } from "./executor/outcome-reporter.js";
import { cancelTask } from "./handlers/cancel-task.js";
import { perform } from "./handlers/perform.js";
import { state } from "./handlers/state.js";
import { taskLogs } from "./handlers/task-logs.js";
import { Heartbeat } from "./heartbeat.js";
import { TaskLogStore } from "./logs/task-log-store.js";
import { CellMetrics } from "./metrics.js";
import { Reconciler } from "./reconcile/reconciler.js";
import type { ContainerRuntime } from "./runtime/container-runtime.js";
import { DockerEngine } from "./runtime/docker-engine.js";
import { DockerRuntime } from "./runtime/docker-runtime.js";
import { ContainerPool, dockerPoolEngine } from "./runtime/container-pool.js";
import { cellLabels } from "./executor/labels.js";
import { hostAllowsPrivileged } from "./runtime/privileged-config.js";

export interface CellOverrides {
  /** A runtime other than Docker (tests: FakeRuntime). */
  runtime?: ContainerRuntime;
  logger?: Logger;
  /** With a non-Docker runtime: whether disk_mb is enforced (default true). */
  diskQuota?: boolean;
}

/** A started cell: call it to drain and stop; it also tells where it listens. */
export type RunningCell = (() => Promise<void>) & {
  /** host:port of the gRPC server. */
  address: string;
  statusPort: number;
  cell: Cell;
  reconciler: Reconciler;
  heartbeat: Heartbeat;
  /** Whether disk_mb is enforced here, and why (probed at start). */
  diskQuota: { enforced: boolean; reason: string };
  /** Stops at once without draining or deregistering (as a crash would, for tests); containers stay. */
  crash(): Promise<void>;
};

/** Wires and starts a cell in this process: runtime, ledger, runners, reconcile, heartbeat, gRPC and status servers. */
export async function startCell(config: CellConfig, overrides: CellOverrides = {}): Promise<RunningCell> {
  const logger = overrides.logger ?? createLogger("cell", config.logLevel).child({ cellId: config.cellId });
  const tls = tlsFilesOf(config);
  const workDir = config.workDir ?? join(tmpdir(), `diego-cell-${config.cellId}`);

  let runtime: ContainerRuntime;
  let diskQuota: boolean;
  let diskQuotaReason = "the runtime enforces disk_mb";
  let dataRoot = tmpdir();
  let pool: ContainerPool | undefined;
  if (overrides.runtime) {
    runtime = overrides.runtime;
    diskQuota = overrides.diskQuota ?? true;
  } else {
    const helperDir = join(workDir, "helper");
    const docker = new DockerRuntime({ socketPath: config.dockerSocket, helperDir });
    const engine = new DockerEngine(docker, helperDir);
    const info = await engine.engineInfo();
    dataRoot = info.dataRoot;
    await engine.prepareHelper(config.helperImage);
    const probe = await engine.probeDiskQuota(config.helperImage);
    diskQuota = probe.enforced;
    diskQuotaReason = probe.reason;
    if (probe.enforced) logger.info({ driver: info.driver }, `disk_mb is enforced: ${probe.reason}`);
    else
      logger.warn(
        { driver: info.driver },
        `disk_mb is NOT enforced on this cell: ${probe.reason} (use a btrfs data root for quotas)`,
      );
    runtime = docker;
    if (config.containerPool)
      pool = new ContainerPool({
        engine: dockerPoolEngine(docker),
        settings: {
          size: config.containerPoolSize,
          maxShapes: config.containerPoolMaxShapes,
          shapeIdleMs: config.containerPoolShapeIdle,
        },
        labels: cellLabels(config.cellId),
        namePrefix: poolNamePrefix(config.cellId),
        logger,
        remove: (id) => cell.removeContainer(id),
      });
  }
  let allowPrivileged = config.allowPrivileged;
  if (allowPrivileged && !overrides.runtime && !hostAllowsPrivileged()) {
    allowPrivileged = false;
    logger.error(
      "--allow-privileged is set but this host cannot give containers Docker's Privileged mode (its capability bounding set is incomplete): this cell refuses privileged tasks",
    );
  } else if (allowPrivileged)
    logger.warn(
      "this cell runs privileged tasks (--allow-privileged): they are root on this host with every capability",
    );

  const total = {
    memoryMb: config.memoryMb || Math.floor(totalmem() / 1024 / 1024),
    diskMb: config.diskMb || (await diskSizeMb(dataRoot)),
    containers: config.maxContainers,
  };
  const egress = new EgressPolicy({ deny: config.egressDenyCidrs, allow: config.egressAllowCidrs });
  const cache = new DownloadCache(
    join(workDir, "downloads"),
    config.downloadCacheMb * 1024 * 1024,
    config.maxConcurrentDownloads,
    {
      egress,
      maxBytes: config.downloadMaxMb * 1024 * 1024,
      timeoutMs: config.downloadTimeout,
      idleTimeoutMs: config.downloadIdleTimeout,
      perTask: config.downloadsPerTask || undefined,
    },
  );
  await cache.init();
  const logs = new TaskLogStore({ retentionMs: config.logRetention, maxTotalBytes: config.logStoreMaxBytes });
  const bbsOptions = { tls, defaultTimeoutMs: 10_000 };
  const lifecycle = createClient(TaskLifecycleService, config.bbsAddress, bbsOptions);
  const tasks = createClient(TaskService, config.bbsAddress, bbsOptions);
  const registry = createClient(CellRegistryService, config.bbsAddress, bbsOptions);
  const serviceMetrics = new ServiceMetrics("cell");
  const opened = await OutcomeJournal.open(join(workDir, "journal"));
  for (const bad of opened.bad)
    logger.error(bad, "a journal file cannot be read back; set aside as .bad (its task is left to reconcile)");
  const journal = opened.journal;

  const cell = new Cell({
    identity: {
      cellId: config.cellId,
      zone: config.zone,
      stacks: config.stacks,
      preloaded: config.preloaded,
      placementTags: config.placementTags,
      optionalPlacementTags: config.optionalPlacementTags,
      allowPrivileged,
    },
    total,
    runtime,
    lifecycle,
    logs,
    cache,
    limits: {
      maxPids: config.maxPids,
      network: config.network,
      diskQuota,
      resultFileMaxBytes: config.resultFileMaxBytes,
      gracefulShutdownMs: config.gracefulShutdownInterval,
      reservedExpirationMs: config.reservedExpiration,
      egress,
      uploadMaxBytes: config.uploadMaxMb * 1024 * 1024,
      logTailBytes: config.logTailBytes,
      maxTaskProcesses: config.maxTaskProcesses,
      instanceIp: cellIp(config.advertiseAddress ?? config.listenAddress, networkInterfaces()),
    },
    journal,
    reporter: (metrics) =>
      new OutcomeReporter({
        cellId: config.cellId,
        journal,
        lifecycle,
        callTimeoutMs: config.reportTimeout,
        backoff: { initialMs: 200, maxMs: config.reportRetryMax },
        metrics,
        logger,
      }),
    metrics: (capacity) =>
      new CellMetrics(serviceMetrics.registry, config.cellId, capacity, config.metricLabelKeys, () => pool?.stats()),
    logger,
    pool,
  });
  logger.info(
    { total, stacks: config.stacks, preloaded: config.preloaded, zone: config.zone, network: config.network },
    "cell capacity",
  );

  // Before taking work: remove the pooled containers an earlier run left unclaimed, report the outcomes
  // it kept, follow the tasks it left running, then repair whatever else it left behind.
  await pool?.start();
  await cell.recover(opened.records);
  const reconciler = new Reconciler({ cell, runtime, tasks, lifecycle, intervalMs: config.reconcileInterval, logger });
  await reconciler.sync();

  const server = new GrpcServer({ logger, tls, insecure: config.insecure, observe: serviceMetrics.observeGrpc });
  const impl: ServiceImpl<(typeof cellv1.CellRepService)["method"]> = {
    state: state(cell),
    perform: perform(cell),
    cancelTask: cancelTask(cell, () => reconciler),
    taskLogs: taskLogs(logs),
  };
  server.add(cellv1.CellRepService, impl);
  const port = await server.listen(config.listenAddress);
  const listenHost = config.listenAddress.slice(0, config.listenAddress.lastIndexOf(":"));
  const address = `${listenHost}:${port}`;
  // A wildcard listen address is no address to give others: advertise the host name then.
  const advertise =
    config.advertiseAddress ?? (["0.0.0.0", "[::]", "::", ""].includes(listenHost) ? `${hostname()}:${port}` : address);
  logger.info({ address, advertise }, `cell gRPC listening on ${address}`);

  const heartbeat = new Heartbeat(registry, () => cell.presence(advertise), config.heartbeatTtl, logger);
  await heartbeat.start();
  await reconciler.start();

  const status = new StatusServer({ registry: serviceMetrics.registry, ready: () => heartbeat.ok && !cell.draining });
  const statusPort = await status.listen(config.statusAddress);
  logger.info(
    `cell status (HTTP /metrics /healthz /readyz) listening on ${config.statusAddress.slice(0, config.statusAddress.lastIndexOf(":"))}:${statusPort}`,
  );

  const closeClients = () => {
    lifecycle.close();
    tasks.close();
    registry.close();
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    logger.info("draining");
    await cell.drain(config.drainTimeout);
    await pool?.stop();
    reconciler.stop();
    // Outcomes the BBS has not taken yet stay journaled for the next start.
    await cell.reporter.flush(Math.min(5_000, config.drainTimeout));
    cell.reporter.stop();
    await heartbeat.stop(config.cellId);
    await server.shutdown(2_000);
    await status.close();
    logs.close();
    closeClients();
    logger.info("cell stopped");
  };
  const crash = async () => {
    stopped = true;
    pool?.halt();
    reconciler.stop();
    cell.reporter.stop();
    await heartbeat.stop("");
    server.setServing(false);
    await server.shutdown(0);
    await status.close();
    closeClients();
  };
  return Object.assign(stop, {
    address,
    statusPort,
    cell,
    reconciler,
    heartbeat,
    crash,
    diskQuota: { enforced: diskQuota, reason: diskQuotaReason },
  });
}

/** Names of pooled containers not yet claimed: `diego_pool.` never starts a task container's name (`diego-`). */
export function poolNamePrefix(cellId: string): string {
  return `diego_pool.${cellId.replace(/[^A-Za-z0-9_.-]/g, "_")}.`;
}

async function diskSizeMb(path: string): Promise<number> {
  try {
    const s = await statfs(path);
    return Math.floor((s.blocks * s.bsize) / 1024 / 1024);
  } catch {
    return 0;
  }
}

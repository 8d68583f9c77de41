import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import {
  createClient,
  createLogger,
  GrpcServer,
  ServiceMetrics,
  splitHostPort,
  StatusServer,
  tlsFilesOf,
  type Logger,
} from "@diego/kit";
import { auctioneerv1, LockService } from "@diego/proto";
import { AuctionRunner } from "./auction-runner.js";
import type { AuctioneerConfig } from "./config.js";
import { GrpcBbs, GrpcCells } from "./grpc-ports.js";
import { requestTaskAuctions } from "./handlers/request-task-auctions.js";
import { LockKeeper } from "./lock-keeper.js";
import { AuctioneerMetrics } from "./metrics.js";

/** The lock that elects the active auctioneer; its value is the active one's address. */
export const AUCTIONEER_LOCK = "auctioneer";

export interface AuctioneerHandle {
  /** host:port of the gRPC server (the bound port when the configured one was 0). */
  address: string;
  /** host:port of the HTTP status server. */
  statusAddress: string;
  /** The address published in the lock. */
  advertiseAddress: string;
  /** True while this auctioneer holds the lock. */
  isActive(): boolean;
  runner: AuctionRunner;
  metrics: ServiceMetrics;
  /**
   * Releases the lock (unless `releaseLock` is false, which tests use to act out a crash: the lock then
   * expires after its TTL), stops auctioning and both servers.
   */
  stop(options?: { releaseLock?: boolean }): Promise<void>;
}

export interface AuctioneerDeps {
  logger?: Logger;
}

/**
 * Starts an auctioneer in this process: the AuctioneerService gRPC server, the HTTP status server, the
 * auction loop and the lock keeper. Only the lock holder auctions; a standby refuses requests.
 */
export async function startAuctioneer(config: AuctioneerConfig, deps: AuctioneerDeps = {}): Promise<AuctioneerHandle> {
  const logger = deps.logger ?? createLogger("auctioneer", config.logLevel);
  const tls = tlsFilesOf(config);
  const serviceMetrics = new ServiceMetrics("auctioneer");
  const metrics = new AuctioneerMetrics(serviceMetrics.registry);

  const bbs = new GrpcBbs(config.bbsAddress, { tls, timeoutMs: config.communicationTimeout });
  const runner = new AuctionRunner({
    bbs,
    cells: new GrpcCells({
      tls,
      stateTimeoutMs: config.cellStateTimeout,
      performTimeoutMs: config.communicationTimeout,
    }),
    logger,
    metrics,
    startingContainerWeight: config.startingContainerWeight,
    retryIntervalMs: config.retryInterval,
    maxRetryIntervalMs: Math.max(config.retryInterval, config.maxRetryInterval),
    cellListIntervalMs: config.cellListInterval,
    cellStateRefreshIntervalMs: config.cellStateRefreshInterval,
    waitingTaskExpiryMs: config.waitingTaskExpiry,
    maxCellRefusals: config.maxCellRefusals,
    maxConcurrentRequests: config.maxConcurrentRequests,
  });

  let keeper: LockKeeper | undefined;
  const server = new GrpcServer({ logger, tls, insecure: config.insecure, observe: serviceMetrics.observeGrpc });
  server.add(auctioneerv1.AuctioneerService, {
    requestTaskAuctions: requestTaskAuctions({
      isActive: () => runner.isActive,
      activeAddress: () => keeper?.holder ?? "",
      enqueue: (tasks) => runner.enqueue(tasks),
    }),
  });
  const port = await server.listen(config.listenAddress);
  const { host } = splitHostPort(config.listenAddress);
  const address = `${host.includes(":") ? `[${host}]` : host}:${port}`;
  const advertiseAddress = config.advertiseAddress || address;

  const lockClient = createClient(LockService, config.bbsAddress, {
    tls,
    defaultTimeoutMs: config.communicationTimeout,
  });
  keeper = new LockKeeper({
    lock: lockClient,
    key: AUCTIONEER_LOCK,
    owner: `${hostname()}-${process.pid}-${randomUUID()}`,
    value: advertiseAddress,
    ttlMs: config.lockTtl,
    retryIntervalMs: config.lockRetryInterval,
    logger,
    onChange: (holding) => {
      metrics.lockHeld.set(holding ? 1 : 0);
      if (holding) runner.activate();
      else runner.deactivate();
    },
  });

  const status = new StatusServer({
    registry: serviceMetrics.registry,
    // Ready: active, or a standby that can reach the BBS.
    ready: () => keeper!.isHolding || keeper!.bbsReachable,
  });
  let statusPort: number;
  try {
    statusPort = await status.listen(config.statusAddress);
  } catch (err) {
    await server.shutdown(0);
    throw err;
  }
  const statusAddress = `${splitHostPort(config.statusAddress).host}:${statusPort}`;

  runner.start();
  keeper.start();
  logger.info(
    { grpc: address, status: statusAddress, advertise: advertiseAddress, bbs: config.bbsAddress, tls: !!tls },
    "auctioneer listening",
  );

  let stopped: Promise<void> | undefined;
  return {
    address,
    statusAddress,
    advertiseAddress,
    isActive: () => runner.isActive,
    runner,
    metrics: serviceMetrics,
    stop: (options = {}) =>
      (stopped ??= (async () => {
        await keeper!.stop(options.releaseLock ?? true);
        await runner.stop();
        await server.shutdown(2_000);
        await status.close();
        lockClient.close();
        bbs.close();
        logger.info("auctioneer stopped");
      })()),
  };
}

import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createClient, type ServiceClient } from "@diego/kit";
import { CellService, TaskService } from "@diego/proto";
import { makeLogDir, ServiceProcess } from "@diego/e2e";
import { eventually, freePort } from "@diego/testing";
import type { HostNetwork, NetnsHost } from "./host-network.js";

/** The short timings that keep the suite quick: a cell's presence TTL and everything scaled to it. */
export interface Timings {
  /** The cells' heartbeat TTL (a heartbeat every third of it) and the BBS's assumed presence TTL. */
  presenceTtlMs: number;
  /** The BBS convergence leader's lease and the auctioneer lock's TTL. */
  lockTtlMs: number;
}

export const DEFAULT_TIMINGS: Timings = { presenceTtlMs: 6_000, lockTtlMs: 4_000 };

export interface FaultClusterOptions {
  /** etcd client URLs (every member). */
  etcdEndpoints: string[];
  bbsCount: number;
  auctioneerCount: number;
  cellIds: string[];
  /** Cells run as separate hosts on this network; the BBS listens on its bridge address. */
  network?: HostNetwork;
  timings?: Timings;
}

interface Service {
  process: ServiceProcess;
  args: string[];
  wrapper: string[];
  address: string;
  statusAddress: string;
}

const ms = (n: number) => `${n}ms`;

/**
 * A whole cluster as separate OS processes started from their main.ts (as scripts/dev does): several
 * BBS instances sharing one etcd prefix, several auctioneers, and cells (each optionally a host of
 * its own in a network namespace), so that any of them can be SIGKILLed, SIGSTOPped or cut off.
 */
export class FaultCluster {
  readonly tasks: ServiceClient<(typeof TaskService)["method"]>;
  readonly cellService: ServiceClient<(typeof CellService)["method"]>;
  readonly bbs: Service[] = [];
  readonly auctioneers: Service[] = [];
  readonly cells = new Map<string, Service & { host?: NetnsHost }>();
  readonly timings: Timings;

  private constructor(
    readonly options: FaultClusterOptions,
    readonly logDir: string,
    readonly etcdPrefix: string,
    private readonly bbsAddresses: string[],
  ) {
    this.timings = options.timings ?? DEFAULT_TIMINGS;
    const all = bbsAddresses.join(",");
    this.tasks = createClient(TaskService, all, { defaultTimeoutMs: 10_000 });
    this.cellService = createClient(CellService, all, { defaultTimeoutMs: 10_000 });
  }

  static async start(options: FaultClusterOptions): Promise<FaultCluster> {
    const host = options.network?.gatewayIp ?? "127.0.0.1";
    const bbsAddresses: string[] = [];
    for (let i = 0; i < options.bbsCount; i++) bbsAddresses.push(`${host}:${await freePort()}`);
    const prefix = `/faults-${randomBytes(4).toString("hex")}`;
    const cluster = new FaultCluster(options, makeLogDir("faults"), prefix, bbsAddresses);
    try {
      await cluster.boot();
    } catch (err) {
      await cluster.stop();
      throw new Error(`the cluster did not start: ${(err as Error).message}\n${cluster.logs()}`);
    }
    return cluster;
  }

  private async boot(): Promise<void> {
    const { presenceTtlMs, lockTtlMs } = this.timings;
    const insecure = this.options.network ? ["--insecure"] : [];
    for (const [i, address] of this.bbsAddresses.entries()) {
      const statusAddress = `127.0.0.1:${await freePort()}`;
      const args = [
        "--instance-id",
        `bbs-${i}`,
        "--listen-address",
        address,
        "--status-address",
        statusAddress,
        "--etcd-endpoints",
        this.options.etcdEndpoints.join(","),
        "--etcd-prefix",
        this.etcdPrefix,
        "--encryption-keys",
        `faults=${this.etcdPrefix.slice(1)}-key`,
        "--etcd-request-timeout",
        "3s",
        "--lock-ttl",
        ms(lockTtlMs),
        "--lock-retry-interval",
        "500ms",
        "--converge-repeat-interval",
        "2s",
        "--cell-presence-ttl",
        ms(presenceTtlMs),
        "--communication-timeout",
        "5s",
        // Tasks are judged at the end of a case: nothing may be deleted before that.
        "--expire-completed-task-duration",
        "30m",
        ...insecure,
      ];
      this.bbs.push(this.spawn(`bbs-${i}`, "bbs", args, [], address, statusAddress));
    }
    await Promise.all(this.bbs.map((s) => this.waitReady(s)));

    for (let i = 0; i < this.options.auctioneerCount; i++) {
      const address = `127.0.0.1:${await freePort()}`;
      const statusAddress = `127.0.0.1:${await freePort()}`;
      const args = [
        "--listen-address",
        address,
        "--status-address",
        statusAddress,
        "--bbs-address",
        this.rotatedBbsAddresses(i),
        "--lock-ttl",
        ms(lockTtlMs),
        "--lock-retry-interval",
        "500ms",
        "--communication-timeout",
        "5s",
        "--cell-state-timeout",
        "2s",
      ];
      this.auctioneers.push(this.spawn(`auctioneer-${i}`, "auctioneer", args, [], address, statusAddress));
    }
    await Promise.all(this.auctioneers.map((s) => this.waitReady(s)));
    await eventually("an active auctioneer", () => this.activeAuctioneer(), 60_000);

    for (const id of this.options.cellIds) await this.addCell(id);
    await Promise.all(this.options.cellIds.map((id) => this.waitCellListed(id)));
  }

  /**
   * Every BBS address, starting at a different one for each client: a client talks to the first
   * that answers, so the cells and auctioneers spread over the instances and a fault of any one of
   * them hits some of its clients.
   */
  private rotatedBbsAddresses(index: number): string {
    const n = this.bbsAddresses.length;
    const start = index % n;
    return [...this.bbsAddresses.slice(start), ...this.bbsAddresses.slice(0, start)].join(",");
  }

  private spawn(
    name: string,
    pkg: "bbs" | "auctioneer" | "cell",
    args: string[],
    wrapper: string[],
    address: string,
    statusAddress: string,
  ): Service {
    const process = new ServiceProcess(name, pkg, args, this.logDir, { DIEGO_LOG_LEVEL: "debug" }, wrapper);
    return { process, args, wrapper, address, statusAddress };
  }

  private async addCell(id: string): Promise<void> {
    const host = this.options.network ? await this.options.network.addHost(id) : undefined;
    const ip = host?.ip ?? "127.0.0.1";
    const address = `${ip}:${await freePort()}`;
    const statusAddress = `${ip}:${await freePort()}`;
    const workDir = join(this.logDir, `work-${id}`);
    mkdirSync(workDir, { recursive: true });
    const args = [
      "--cell-id",
      id,
      "--listen-address",
      address,
      "--status-address",
      statusAddress,
      "--bbs-address",
      this.rotatedBbsAddresses(this.cells.size),
      "--heartbeat-ttl",
      ms(this.timings.presenceTtlMs),
      "--reconcile-interval",
      "2s",
      "--drain-timeout",
      "5s",
      "--graceful-shutdown-interval",
      "2s",
      "--memory-mb",
      "4096",
      "--work-dir",
      workDir,
      ...(host ? ["--insecure"] : []),
    ];
    const cell = { ...this.spawn(id, "cell", args, host?.wrapper ?? [], address, statusAddress), host };
    this.cells.set(id, cell);
    await this.waitReady(cell);
  }

  cell(id: string): Service & { host?: NetnsHost } {
    const cell = this.cells.get(id);
    if (!cell) throw new Error(`no cell ${id}`);
    return cell;
  }

  /**
   * Starts a stopped cell again with the same id, addresses, work dir and host; waits until it is
   * ready and listed unless `waitReady` is false (its readiness needs the BBS).
   */
  async restartCell(id: string, { waitReady = true } = {}): Promise<void> {
    const cell = this.cell(id);
    if (cell.process.running) throw new Error(`cell ${id} still runs`);
    cell.process = new ServiceProcess(id, "cell", cell.args, this.logDir, { DIEGO_LOG_LEVEL: "debug" }, cell.wrapper);
    if (!waitReady) return;
    await this.waitReady(cell);
    await this.waitCellListed(id);
  }

  /** Starts a stopped BBS instance again on the same addresses. */
  async restartBbs(index: number): Promise<void> {
    const bbs = this.bbs[index]!;
    if (bbs.process.running) throw new Error(`bbs-${index} still runs`);
    bbs.process = new ServiceProcess(`bbs-${index}`, "bbs", bbs.args, this.logDir, { DIEGO_LOG_LEVEL: "debug" });
    await this.waitReady(bbs);
  }

  /** The index of the BBS instance that holds the convergence lease, if one does. */
  async leadingBbs(): Promise<number | undefined> {
    const id = await this.etcdGet(`${this.etcdPrefix}/leader`);
    const match = id?.match(/^bbs-(\d+)$/);
    return match ? Number(match[1]) : undefined;
  }

  /** The index of the auctioneer that holds the `auctioneer` lock, if one does. */
  async activeAuctioneer(): Promise<number | undefined> {
    const record = await this.etcdGet(`${this.etcdPrefix}/locks/auctioneer`);
    if (!record) return undefined;
    const { value } = JSON.parse(record) as { value: string };
    const index = this.auctioneers.findIndex((a) => a.address === value);
    return index >= 0 ? index : undefined;
  }

  /** A key read through etcd's JSON gateway from the first member that answers. */
  private async etcdGet(key: string): Promise<string | undefined> {
    for (const url of this.options.etcdEndpoints) {
      try {
        const res = await fetch(`${url}/v3/kv/range`, {
          method: "POST",
          body: JSON.stringify({ key: Buffer.from(key).toString("base64") }),
          signal: AbortSignal.timeout(2_000),
        });
        if (!res.ok) continue;
        const body = (await res.json()) as { kvs?: { value?: string }[] };
        const value = body.kvs?.[0]?.value;
        return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
      } catch {
        // the next member
      }
    }
    return undefined;
  }

  async waitCellListed(id: string): Promise<void> {
    await eventually(
      `${id} to be listed by the BBS`,
      async () => (await this.cellService.listCells({})).cells.some((c) => c.cellId === id),
      60_000,
    );
  }

  private async waitReady(service: Service): Promise<void> {
    const proc = service.process;
    await eventually(
      `${proc.name} to be ready`,
      async () => {
        if (!proc.running) throw new Error(`${proc.name} exited:\n${proc.log().slice(-3000)}`);
        return (await fetch(`http://${service.statusAddress}/readyz`, { signal: AbortSignal.timeout(2_000) })).ok;
      },
      90_000,
    );
  }

  private all(): ServiceProcess[] {
    return [...this.bbs, ...this.auctioneers, ...this.cells.values()].map((s) => s.process);
  }

  /** The tail of every process's log, for a failing case's message. */
  logs(tail = 3000): string {
    return this.all()
      .map((p) => `----- ${p.name} -----\n${p.log().slice(-tail)}`)
      .join("\n");
  }

  async stop(): Promise<void> {
    this.tasks.close();
    this.cellService.close();
    const stopAll = (services: Service[]) => Promise.all(services.map((s) => s.process.stop("SIGTERM", 15_000)));
    await stopAll([...this.cells.values()]);
    await stopAll(this.auctioneers);
    await stopAll(this.bbs);
    if (!process.env.DIEGO_KEEP_LOGS) rmSync(this.logDir, { recursive: true, force: true });
  }
}

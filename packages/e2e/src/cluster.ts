import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { CellService, TaskLifecycleService, TaskService } from "@diego/proto";
import { createClient, type ServiceClient, type TlsFiles } from "@diego/kit";
import { eventually, freePort } from "@diego/testing";
import { makeLogDir, ServiceProcess } from "./processes.js";

export interface CellSpec {
  id: string;
  /** Extra flags, e.g. ["--placement-tags", "gpu", "--memory-mb", "512"]. */
  args?: string[];
}

export interface ClusterOptions {
  /** etcd client URL; defaults to the test run's private etcd. */
  etcd?: string;
  cells?: CellSpec[];
  bbsArgs?: string[];
  auctioneerArgs?: string[];
  /** Mutual TLS material for every service and the test's clients. */
  tls?: { server: (name: string) => TlsFiles; client: TlsFiles };
}

interface CellProcess {
  spec: CellSpec;
  address: string;
  statusAddress: string;
  process: ServiceProcess;
}

/**
 * A whole cluster as separate processes (BBS, auctioneer, cells), started from their main.ts like
 * scripts/dev does, on free ports and a private etcd key prefix, for end-to-end tests.
 */
export class Cluster {
  readonly tasks: ServiceClient<(typeof TaskService)["method"]>;
  readonly cellService: ServiceClient<(typeof CellService)["method"]>;
  readonly lifecycle: ServiceClient<(typeof TaskLifecycleService)["method"]>;
  private readonly cellProcesses = new Map<string, CellProcess>();
  private bbsProcess!: ServiceProcess;
  private auctioneerProcess!: ServiceProcess;
  auctioneerStatusAddress = "";
  /** host:port of the auctioneer's gRPC server. */
  auctioneerAddress = "";

  private constructor(
    readonly options: ClusterOptions,
    readonly logDir: string,
    readonly etcdPrefix: string,
    readonly bbsAddress: string,
    readonly bbsStatusAddress: string,
  ) {
    const clientOptions = { tls: options.tls?.client, defaultTimeoutMs: 30_000 };
    this.tasks = createClient(TaskService, bbsAddress, clientOptions);
    this.cellService = createClient(CellService, bbsAddress, clientOptions);
    this.lifecycle = createClient(TaskLifecycleService, bbsAddress, clientOptions);
  }

  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const etcd = options.etcd ?? process.env.DIEGO_TEST_ETCD;
    if (!etcd) throw new Error("no etcd: run under the jest global setup or set DIEGO_TEST_ETCD");
    const prefix = `/e2e-${randomBytes(4).toString("hex")}`;
    const bbsAddress = `127.0.0.1:${await freePort()}`;
    const bbsStatus = `127.0.0.1:${await freePort()}`;
    const cluster = new Cluster(options, makeLogDir("cluster"), prefix, bbsAddress, bbsStatus);
    try {
      await cluster.boot(etcd);
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private tlsArgs(name: string): string[] {
    const tls = this.options.tls?.server(name);
    return tls ? ["--tls-ca-file", tls.caFile, "--tls-cert-file", tls.certFile, "--tls-key-file", tls.keyFile] : [];
  }

  private async boot(etcd: string): Promise<void> {
    this.bbsProcess = new ServiceProcess(
      "bbs",
      "bbs",
      [
        "--listen-address",
        this.bbsAddress,
        "--status-address",
        this.bbsStatusAddress,
        // The local cluster makes a key for itself: image_password and secret_env are sealed in etcd.
        "--encryption-keys",
        `e2e=${this.etcdPrefix.slice(1)}-key`,
        "--etcd-endpoints",
        etcd,
        "--etcd-prefix",
        this.etcdPrefix,
        ...this.tlsArgs("bbs"),
        ...(this.options.bbsArgs ?? []),
      ],
      this.logDir,
    );
    await this.waitReady("bbs", this.bbsStatusAddress, this.bbsProcess);

    const auctioneerAddress = `127.0.0.1:${await freePort()}`;
    const auctioneerStatus = `127.0.0.1:${await freePort()}`;
    this.auctioneerStatusAddress = auctioneerStatus;
    this.auctioneerAddress = auctioneerAddress;
    this.auctioneerProcess = new ServiceProcess(
      "auctioneer",
      "auctioneer",
      [
        "--listen-address",
        auctioneerAddress,
        "--status-address",
        auctioneerStatus,
        "--bbs-address",
        this.bbsAddress,
        ...this.tlsArgs("auctioneer"),
        ...(this.options.auctioneerArgs ?? []),
      ],
      this.logDir,
    );
    await this.waitReady("auctioneer", auctioneerStatus, this.auctioneerProcess);

    const specs = this.options.cells ?? [{ id: "cell-1" }, { id: "cell-2" }];
    await Promise.all(specs.map((spec) => this.startCell(spec)));
  }

  /** Starts (or restarts) a cell and waits until the BBS lists it. */
  async startCell(spec: CellSpec): Promise<void> {
    const old = this.cellProcesses.get(spec.id);
    const address = old?.address ?? `127.0.0.1:${await freePort()}`;
    const statusAddress = old?.statusAddress ?? `127.0.0.1:${await freePort()}`;
    const process = new ServiceProcess(
      spec.id,
      "cell",
      [
        "--cell-id",
        spec.id,
        "--listen-address",
        address,
        "--status-address",
        statusAddress,
        "--bbs-address",
        this.bbsAddress,
        ...this.tlsArgs(spec.id),
        ...(spec.args ?? []),
      ],
      this.logDir,
    );
    this.cellProcesses.set(spec.id, { spec, address, statusAddress, process });
    await this.waitReady(spec.id, statusAddress, process);
    await eventually(`${spec.id} to be listed by the BBS`, async () => {
      const { cells } = await this.cellService.listCells({});
      return cells.some((c) => c.cellId === spec.id);
    });
  }

  cell(id: string): CellProcess {
    const cell = this.cellProcesses.get(id);
    if (!cell) throw new Error(`no cell ${id}`);
    return cell;
  }

  get bbs(): ServiceProcess {
    return this.bbsProcess;
  }

  get auctioneer(): ServiceProcess {
    return this.auctioneerProcess;
  }

  private async waitReady(name: string, statusAddress: string, proc: ServiceProcess): Promise<void> {
    await eventually(
      `${name} to be ready`,
      async () => {
        if (!proc.running) throw new Error(`${name} exited:\n${proc.log().slice(-3000)}`);
        const res = await fetch(`http://${statusAddress}/readyz`);
        return res.ok;
      },
      90_000,
    );
  }

  /** The logs of every process, for a failing test's message. */
  logs(): string {
    const all = [this.bbsProcess, this.auctioneerProcess, ...[...this.cellProcesses.values()].map((c) => c.process)];
    return all
      .filter(Boolean)
      .map((p) => `----- ${p.name} -----\n${p.log().slice(-4000)}`)
      .join("\n");
  }

  async stop(): Promise<void> {
    this.tasks?.close();
    this.cellService?.close();
    this.lifecycle?.close();
    await Promise.all([...this.cellProcesses.values()].map((c) => c.process.stop()));
    await this.auctioneerProcess?.stop();
    await this.bbsProcess?.stop();
    if (!process.env.DIEGO_KEEP_LOGS) rmSync(this.logDir, { recursive: true, force: true });
  }
}

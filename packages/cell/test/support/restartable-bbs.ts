// A BBS on the test run's real etcd (a key prefix of its own) that a test can stop and start again at
// the same address, with a real auctioneer; and cells as real processes (main.ts) that a test can kill -9
// and start again on the same work dir. What the cell sees when the BBS goes away for a while.
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { auctioneerConfig, startAuctioneer, type AuctioneerHandle } from "@diego/auctioneer";
import { startBbs, type RunningBbs } from "@diego/bbs";
import { createClient, createLogger, type ServiceClient } from "@diego/kit";
import { DiegoError } from "@diego/models";
import { CellService, TaskService, TaskState, type Task } from "@diego/proto";
import { eventually, freePort } from "@diego/testing";

const root = resolve(import.meta.dirname, "../../../..");
const level = process.env.DIEGO_TEST_LOG ?? "silent";

export class RestartableBbs {
  readonly tasks: ServiceClient<(typeof TaskService)["method"]>;
  readonly cells: ServiceClient<(typeof CellService)["method"]>;
  private bbs?: RunningBbs;
  private auctioneer?: AuctioneerHandle;

  private constructor(
    readonly address: string,
    private readonly prefix: string,
  ) {
    this.tasks = createClient(TaskService, address, { defaultTimeoutMs: 10_000 });
    this.cells = createClient(CellService, address, { defaultTimeoutMs: 10_000 });
  }

  static async start(): Promise<RestartableBbs> {
    const etcd = process.env.DIEGO_TEST_ETCD;
    if (!etcd) throw new Error("DIEGO_TEST_ETCD is not set (the jest global setup starts etcd)");
    const b = new RestartableBbs(`127.0.0.1:${await freePort()}`, `/test-cell/${randomBytes(4).toString("hex")}`);
    await b.startBbs();
    b.auctioneer = await startAuctioneer(
      auctioneerConfig({ listenAddress: "127.0.0.1:0", statusAddress: "127.0.0.1:0", bbsAddress: b.address }),
      { logger: createLogger("auctioneer", level) },
    );
    return b;
  }

  async startBbs(): Promise<void> {
    this.bbs = await startBbs(
      {
        etcdEndpoints: [process.env.DIEGO_TEST_ETCD!],
        etcdPrefix: this.prefix,
        listenAddress: this.address,
        statusAddress: "127.0.0.1:0",
        lockTtl: 2_000,
      },
      { logger: createLogger("bbs", level) },
    );
  }

  async stopBbs(): Promise<void> {
    await this.bbs?.stop();
    this.bbs = undefined;
  }

  async get(guid: string): Promise<Task | undefined> {
    try {
      return await this.tasks.getTask({ taskGuid: guid });
    } catch (err) {
      if (DiegoError.is(err) && err.code === "NOT_FOUND") return undefined;
      throw err;
    }
  }

  async waitForState(guid: string, state: TaskState, timeoutMs = 90_000): Promise<Task> {
    return eventually(
      `${guid} ${TaskState[state]}`,
      async () => {
        const t = await this.get(guid);
        return t?.state === state ? t : undefined;
      },
      timeoutMs,
      250,
    );
  }

  async waitForCell(cellId: string, timeoutMs = 60_000): Promise<void> {
    await eventually(
      `cell ${cellId} present`,
      async () => (await this.cells.listCells({})).cells.some((c) => c.cellId === cellId),
      timeoutMs,
      200,
    );
  }

  async stop(): Promise<void> {
    await this.auctioneer?.stop();
    this.tasks.close();
    this.cells.close();
    await this.stopBbs();
  }
}

/** A cell as its own process (main.ts), on Docker. */
export class CellProcess {
  private child?: ChildProcess;

  constructor(
    readonly cellId: string,
    private readonly bbsAddress: string,
    readonly workDir: string,
    private readonly extra: string[] = [],
  ) {}

  start(): void {
    this.child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        "packages/cell/src/main.ts",
        "--cell-id",
        this.cellId,
        "--bbs-address",
        this.bbsAddress,
        "--listen-address",
        "127.0.0.1:0",
        "--status-address",
        "127.0.0.1:0",
        "--work-dir",
        this.workDir,
        "--memory-mb",
        "2048",
        "--disk-mb",
        "2048",
        "--log-level",
        process.env.DIEGO_TEST_LOG ?? "warn",
        ...this.extra,
      ],
      { cwd: root, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, NODE_OPTIONS: "" } },
    );
  }

  /** kill -9: no drain, no deregistration; its containers and journal stay. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGKILL");
    await exited;
  }

  /** SIGTERM (drains) and waits for the exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Waits until the cell has journaled the exec id of a running process of the task. */
export async function processJournaled(workDir: string, guid: string): Promise<void> {
  await eventually(
    "the process journaled",
    async () =>
      (await readFile(join(workDir, "journal", `${guid}.json`), "utf8").catch(() => "")).includes('"processId"'),
    30_000,
    100,
  );
}

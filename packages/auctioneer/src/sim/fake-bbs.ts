import { GrpcServer, createClient, type Logger, type ServiceClient } from "@diego/kit";
import { DiegoError, failedPrecondition, notFound } from "@diego/models";
import { CellService, LockService, TaskLifecycleService, auctioneerv1, type cellv1 } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { PresenceInit } from "./simulated-cell-servers.js";

export type TaskWorkInit = MessageInitShape<typeof cellv1.TaskWorkSchema> & { taskGuid: string };

export type FakeTaskState = "PENDING" | "CLAIMED" | "COMPLETED";

export interface FakeTask {
  work: TaskWorkInit;
  state: FakeTaskState;
  cellId: string;
  rejectionCount: number;
  rejectionReason: string;
  failed: boolean;
  failureReason: string;
}

export interface FakeBbsOptions {
  logger: Logger;
  maxTaskRetries?: number;
}

type AuctioneerClient = ServiceClient<(typeof auctioneerv1.AuctioneerService)["method"]>;

/**
 * The few BBS RPCs the auctioneer uses, in memory, over real gRPC: CellService.ListCells,
 * TaskLifecycleService.RejectTask (Diego's retry rule: the rejection that finds max_task_retries
 * rejections already completes the task as failed; any other puts it back to PENDING and auctions it
 * again at once, like the real BBS) and LockService (TTL locks). For tests and the benchmark only.
 */
export class FakeBbs {
  readonly tasks = new Map<string, FakeTask>();
  readonly rejections: { taskGuid: string; reason: string }[] = [];
  /** Presences returned by ListCells. */
  cells: PresenceInit[] = [];
  /** Make ListCells / Lock fail with UNAVAILABLE. */
  listCellsFails = false;
  lockFails = false;
  private readonly locks = new Map<string, { owner: string; value: string; expiresAt: number }>();
  private readonly server: GrpcServer;
  private readonly auctioneers = new Map<string, AuctioneerClient>();
  address = "";

  constructor(private readonly options: FakeBbsOptions) {
    const unimplemented = () => {
      throw new DiegoError("UNIMPLEMENTED", "not in the fake BBS");
    };
    this.server = new GrpcServer({ logger: options.logger });
    this.server.add(CellService, {
      listCells: () => {
        if (this.listCellsFails) throw new DiegoError("UNAVAILABLE", "fake BBS: ListCells fails");
        return { cells: this.cells };
      },
    });
    this.server.add(TaskLifecycleService, {
      startTask: unimplemented,
      runningTask: unimplemented,
      completeTask: unimplemented,
      lifecycleBatch: unimplemented,
      rejectTask: (req) => {
        if (!req.rejectionReason) throw new DiegoError("INVALID_ARGUMENT", "rejection_reason: is required");
        const task = this.tasks.get(req.taskGuid);
        if (!task) throw notFound(`task ${JSON.stringify(req.taskGuid)}`);
        if (task.state !== "PENDING" && !(task.state === "CLAIMED" && task.cellId === req.cellId)) {
          throw failedPrecondition(`cannot reject a ${task.state} task`);
        }
        this.rejections.push({ taskGuid: req.taskGuid, reason: req.rejectionReason });
        if (req.permanent || task.rejectionCount >= (this.options.maxTaskRetries ?? 3)) {
          Object.assign(task, { state: "COMPLETED", failed: true, failureReason: req.rejectionReason });
          return { failed: true };
        }
        Object.assign(task, {
          state: "PENDING",
          cellId: "",
          rejectionCount: task.rejectionCount + 1,
          rejectionReason: req.rejectionReason,
        });
        void this.requestAuctions([task.work]);
        return { failed: false };
      },
    });
    this.server.add(LockService, {
      lock: (req) => {
        if (this.lockFails) throw new DiegoError("UNAVAILABLE", "fake BBS: Lock fails");
        const held = this.liveLock(req.key);
        if (held && held.owner !== req.owner) throw failedPrecondition(`lock ${req.key} is held by ${held.owner}`);
        this.locks.set(req.key, { owner: req.owner, value: req.value, expiresAt: Date.now() + Number(req.ttlMs) });
        return {};
      },
      release: (req) => {
        const held = this.liveLock(req.key);
        if (held && held.owner !== req.owner) throw failedPrecondition(`lock ${req.key} is held by ${held.owner}`);
        this.locks.delete(req.key);
        return {};
      },
      fetchLock: (req) => {
        const held = this.liveLock(req.key);
        if (!held) throw notFound(`lock ${JSON.stringify(req.key)}`);
        return { owner: held.owner, value: held.value };
      },
    });
  }

  async start(): Promise<string> {
    const port = await this.server.listen("127.0.0.1:0");
    this.address = `127.0.0.1:${port}`;
    return this.address;
  }

  async stop(): Promise<void> {
    for (const c of this.auctioneers.values()) c.close();
    this.auctioneers.clear();
    await this.server.shutdown(0);
  }

  /** The address in the `auctioneer` lock, if someone holds it. */
  activeAuctioneer(): string | undefined {
    return this.liveLock("auctioneer")?.value;
  }

  /** Stores tasks PENDING and asks the active auctioneer to place them (like DesireTask). */
  async desire(works: TaskWorkInit[]): Promise<void> {
    for (const work of works) {
      this.tasks.set(work.taskGuid, {
        work,
        state: "PENDING",
        cellId: "",
        rejectionCount: 0,
        rejectionReason: "",
        failed: false,
        failureReason: "",
      });
    }
    await this.requestAuctions(works);
  }

  /** Sends every PENDING task to the active auctioneer again (a convergence pass). */
  async converge(): Promise<void> {
    await this.requestAuctions([...this.tasks.values()].filter((t) => t.state === "PENDING").map((t) => t.work));
  }

  /** A cell took the task (what its StartTask would do): PENDING → CLAIMED. False when it was not pending. */
  claim(taskGuid: string, cellId: string): boolean {
    const task = this.tasks.get(taskGuid);
    if (!task || task.state !== "PENDING") return false;
    task.state = "CLAIMED";
    task.cellId = cellId;
    return true;
  }

  complete(taskGuid: string): void {
    const task = this.tasks.get(taskGuid);
    if (task) task.state = "COMPLETED";
  }

  count(state: FakeTaskState): number {
    let n = 0;
    for (const t of this.tasks.values()) if (t.state === state) n++;
    return n;
  }

  /** Like the BBS: failures are swallowed (convergence repairs them). Returns whether the call went through. */
  async requestAuctions(works: FakeTask["work"][]): Promise<boolean> {
    const address = this.activeAuctioneer();
    if (!address || works.length === 0) return false;
    let client = this.auctioneers.get(address);
    if (!client) this.auctioneers.set(address, (client = createClient(auctioneerv1.AuctioneerService, address)));
    try {
      for (let i = 0; i < works.length; i += 1000)
        await client.requestTaskAuctions({ tasks: works.slice(i, i + 1000) });
      return true;
    } catch (err) {
      this.options.logger.debug({ err: (err as Error).message }, "fake BBS: auction request failed");
      return false;
    }
  }

  private liveLock(key: string) {
    const held = this.locks.get(key);
    if (held && held.expiresAt <= Date.now()) {
      this.locks.delete(key);
      return undefined;
    }
    return held;
  }
}

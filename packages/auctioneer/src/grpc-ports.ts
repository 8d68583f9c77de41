import { createClient, type ServiceClient, type TlsFiles } from "@diego/kit";
import { CellService, TaskLifecycleService, cellv1, type CellPresence } from "@diego/proto";
import type { TaskWork } from "./batcher.js";
import type { BbsPort, CellsPort } from "./ports.js";

type CellClient = ServiceClient<(typeof cellv1.CellRepService)["method"]>;

/** The BBS over gRPC: CellService.ListCells and TaskLifecycleService.RejectTask. */
export class GrpcBbs implements BbsPort {
  private readonly cells;
  private readonly lifecycle;

  constructor(address: string, options: { tls?: TlsFiles; timeoutMs: number }) {
    this.cells = createClient(CellService, address, { tls: options.tls, defaultTimeoutMs: options.timeoutMs });
    this.lifecycle = createClient(TaskLifecycleService, address, {
      tls: options.tls,
      defaultTimeoutMs: options.timeoutMs,
    });
  }

  async listCells(): Promise<CellPresence[]> {
    return (await this.cells.listCells({})).cells;
  }

  async rejectTask(taskGuid: string, reason: string, permanent: boolean): Promise<{ failed: boolean }> {
    const res = await this.lifecycle.rejectTask({ taskGuid, rejectionReason: reason, cellId: "", permanent });
    return { failed: res.failed };
  }

  close(): void {
    this.cells.close();
    this.lifecycle.close();
  }
}

/** Cells over gRPC (CellRepService), one channel per cell address, kept between auctions. */
export class GrpcCells implements CellsPort {
  private readonly clients = new Map<string, CellClient>();

  constructor(private readonly options: { tls?: TlsFiles; stateTimeoutMs: number; performTimeoutMs: number }) {}

  state(cell: CellPresence): Promise<cellv1.CellState> {
    return this.client(cell.address).state({}, { timeoutMs: this.options.stateTimeoutMs });
  }

  async perform(cell: CellPresence, tasks: TaskWork[]): Promise<cellv1.FailedWork[]> {
    const res = await this.client(cell.address).perform(
      { cellId: cell.cellId, tasks },
      { timeoutMs: this.options.performTimeoutMs },
    );
    return res.failed;
  }

  retain(cells: readonly CellPresence[]): void {
    const keep = new Set(cells.map((c) => c.address));
    for (const [address, client] of this.clients) {
      if (keep.has(address)) continue;
      client.close();
      this.clients.delete(address);
    }
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }

  private client(address: string): CellClient {
    let client = this.clients.get(address);
    if (!client) {
      if (!address) throw new Error("the cell has no address");
      client = createClient(cellv1.CellRepService, address, {
        tls: this.options.tls,
        defaultTimeoutMs: this.options.performTimeoutMs,
      });
      this.clients.set(address, client);
    }
    return client;
  }
}

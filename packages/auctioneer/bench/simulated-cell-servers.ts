import type { SimulatedCell } from "./simulated-cells.js";
import { GrpcServer, type Logger, type TlsFiles } from "@diego/kit";
import { DiegoError, failedPrecondition, presenceOf } from "@diego/models";
import { cellv1, type CellPresenceSchema } from "@diego/proto";
import type { MessageInitShape } from "@bufbuild/protobuf";

/** How a simulated cell misbehaves, for tests: set fields on `behaviour(cellId)`. */
export interface CellBehaviour {
  /** State answers after this long. */
  stateDelayMs?: number;
  /** State fails with UNAVAILABLE. */
  stateFails?: boolean;
  /** State reports this cell id instead of its own. */
  reportCellId?: string;
  /** Perform answers after this long. */
  performDelayMs?: number;
  /** Perform fails with UNAVAILABLE (the cell takes nothing). */
  performFails?: boolean;
  /** Perform refuses every task with this reason. */
  refuseAll?: string;
}

export interface SimulatedCellServersOptions {
  logger: Logger;
  tls?: TlsFiles;
  /** Called with the tasks a cell accepted at Perform (the bench times auctions with it). */
  onAccepted?: (cellId: string, tasks: cellv1.TaskWork[]) => void;
}

export type PresenceInit = MessageInitShape<typeof CellPresenceSchema>;

/**
 * The bench's load generator, not a cell: it serves simulated cells (a cell's capacity books, no containers)
 * over real gRPC: one CellRepService server per cell, each on its own port
 * of 127.0.0.1, all in this process. (Not one server multiplexing many ids: the auctioneer reaches each
 * cell at its own address, as in a real fleet.)
 */
export class SimulatedCellServers {
  private readonly servers = new Map<string, { server: GrpcServer; address: string; cell: SimulatedCell }>();
  private readonly behaviours = new Map<string, CellBehaviour>();

  constructor(private readonly options: SimulatedCellServersOptions) {}

  /** Starts a server for each cell; returns their addresses by cell id. */
  async add(cells: readonly SimulatedCell[], concurrency = 50): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < cells.length; i += concurrency) {
      await Promise.all(
        cells.slice(i, i + concurrency).map(async (cell) => {
          const server = new GrpcServer({ logger: this.options.logger, tls: this.options.tls });
          server.add(cellv1.CellRepService, this.impl(cell));
          const port = await server.listen("127.0.0.1:0");
          const address = `127.0.0.1:${port}`;
          this.servers.set(cell.cellId, { server, address, cell });
          out.set(cell.cellId, address);
        }),
      );
    }
    return out;
  }

  behaviour(cellId: string): CellBehaviour {
    let b = this.behaviours.get(cellId);
    if (!b) this.behaviours.set(cellId, (b = {}));
    return b;
  }

  cell(cellId: string): SimulatedCell | undefined {
    return this.servers.get(cellId)?.cell;
  }

  get cells(): SimulatedCell[] {
    return [...this.servers.values()].map((s) => s.cell);
  }

  /** The presence each cell would heartbeat to the BBS. */
  presences(): PresenceInit[] {
    return [...this.servers.values()].map(({ cell, address }) => presenceOf(cell.state(), address));
  }

  /** Stops one cell's server (it stops answering). */
  async remove(cellId: string): Promise<void> {
    const s = this.servers.get(cellId);
    if (!s) return;
    this.servers.delete(cellId);
    await s.server.shutdown(0);
  }

  async stop(): Promise<void> {
    const all = [...this.servers.values()];
    this.servers.clear();
    await Promise.all(all.map((s) => s.server.shutdown(0)));
  }

  private impl(cell: SimulatedCell) {
    const unavailable = (what: string) => new DiegoError("UNAVAILABLE", `simulated ${what} failure`);
    return {
      state: async (_req: cellv1.StateRequest, ctx: { signal: AbortSignal }) => {
        const b = this.behaviour(cell.cellId);
        if (b.stateDelayMs) await delay(b.stateDelayMs, ctx.signal);
        if (b.stateFails) throw unavailable("state");
        const state = cell.state();
        return { ...state, cellId: b.reportCellId ?? state.cellId };
      },
      perform: async (req: cellv1.PerformRequest, ctx: { signal: AbortSignal }) => {
        const b = this.behaviour(cell.cellId);
        if (b.performDelayMs) await delay(b.performDelayMs, ctx.signal);
        if (b.performFails) throw unavailable("perform");
        if (req.cellId !== cell.cellId) throw failedPrecondition(`this is cell ${cell.cellId}, not ${req.cellId}`);
        const failed = b.refuseAll
          ? req.tasks.map((t) => ({ taskGuid: t.taskGuid, reason: b.refuseAll }))
          : cell.perform(req.tasks);
        const refused = new Set(failed.map((f) => f.taskGuid));
        const accepted = req.tasks.filter((t) => !refused.has(t.taskGuid));
        if (accepted.length) this.options.onAccepted?.(cell.cellId, accepted);
        return { failed };
      },
      cancelTask: (req: cellv1.CancelTaskRequest) => {
        cell.remove(req.taskGuid);
        return {};
      },
      taskLogs: async function* () {
        // Simulated cells run nothing, so there is no output.
      },
    };
  }
}

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}

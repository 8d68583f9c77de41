import { fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import { CellPresenceSchema, type CellPresence } from "@diego/proto";
import type { Logger } from "@diego/kit";
import type { IKeyValue, Watcher } from "etcd3";
import type { EtcdConnection } from "../etcd/etcd-connection.js";
import type { Leases } from "../etcd/leases.js";
import { prefixEnd, type Keys } from "../keys.js";
import type { PresenceEvent, PresenceStore } from "./presence-store.js";

interface Record {
  ttlMs: number;
  cell: JsonValue;
}

/**
 * Cell presence in etcd: `<prefix>/cells/<cell_id>` holds the cell's record under a lease of its TTL.
 * A heartbeat refreshes that lease by id, so heartbeats may alternate between BBS instances; a
 * heartbeat with a different TTL (or after the lease expired) moves the record to a new lease.
 */
export class EtcdPresenceStore implements PresenceStore {
  constructor(
    private readonly etcd: EtcdConnection,
    private readonly leases: Leases,
    private readonly keys: Keys,
    private readonly logger?: Logger,
  ) {}

  watch(listener: (event: PresenceEvent) => void): () => void {
    let stopped = false;
    let watcher: Watcher | undefined;
    const prefix = this.keys.cells;
    const idOf = (kv: IKeyValue) => kv.key.toString().slice(prefix.length);
    const follow = async (): Promise<void> => {
      for (let delay = 250; !stopped; delay = Math.min(delay * 2, 5_000)) {
        try {
          const res = await this.etcd.client.kv.range(
            { key: Buffer.from(prefix), range_end: prefixEnd(prefix) },
            this.etcd.callOptions(),
          );
          listener({ kind: "all", cells: res.kvs.map((kv) => ({ cellId: idOf(kv), ttlMs: parse(kv)?.ttlMs })) });
          const w = await this.etcd.watch((b) =>
            b.prefix(prefix).startRevision(String(Number(res.header.revision) + 1)),
          );
          if (stopped) return void (await w.cancel().catch(() => undefined));
          watcher = w;
          w.on("put", (kv: IKeyValue) => listener({ kind: "present", cellId: idOf(kv), ttlMs: parse(kv)?.ttlMs }));
          w.on("delete", (kv: IKeyValue) => listener({ kind: "gone", cellId: idOf(kv) }));
          w.on("error", (err: Error) => {
            // e.g. the revision to resume from was compacted: read everything again and watch anew.
            this.logger?.warn({ err: err.message }, "presence watch failed; reading every cell again");
            if (watcher !== w) return;
            watcher = undefined;
            void w.cancel().catch(() => undefined);
            void follow();
          });
          return;
        } catch (err) {
          this.logger?.warn({ err: (err as Error).message }, "presence watch could not start; retrying");
          await new Promise((r) => setTimeout(r, delay * (0.5 + Math.random() / 2)));
        }
      }
    };
    void follow();
    return () => {
      stopped = true;
      void watcher?.cancel().catch(() => undefined);
      watcher = undefined;
    };
  }

  async heartbeat(cell: CellPresence, ttlMs: number): Promise<void> {
    const key = Buffer.from(this.keys.cell(cell.cellId));
    const value = Buffer.from(JSON.stringify({ ttlMs, cell: toJson(CellPresenceSchema, cell) } satisfies Record));
    const current = await this.read(key);
    if (
      current &&
      current.lease !== "0" &&
      parse(current)?.ttlMs === ttlMs &&
      (await this.leases.keepAlive(current.lease))
    ) {
      if (!current.value.equals(value)) {
        // Only if nobody changed it meanwhile; a concurrent heartbeat carries news as fresh as ours.
        await this.etcd.client.kv.txn(
          {
            compare: [{ key, target: "Mod", result: "Equal", mod_revision: current.mod_revision }],
            success: [{ request_put: { key, value, lease: current.lease } }],
          },
          this.etcd.callOptions(),
        );
      }
      return;
    }
    const lease = await this.leases.grant(ttlMs);
    await this.etcd.client.kv.put({ key, value, lease }, this.etcd.callOptions());
    if (current && current.lease !== "0") await this.leases.revoke(current.lease).catch(() => undefined);
  }

  async deregister(cellId: string): Promise<void> {
    const key = Buffer.from(this.keys.cell(cellId));
    const current = await this.read(key);
    if (!current) return;
    await this.etcd.client.kv.deleteRange({ key }, this.etcd.callOptions());
    if (current.lease !== "0") await this.leases.revoke(current.lease);
  }

  async list(): Promise<CellPresence[]> {
    const res = await this.etcd.client.kv.range(
      { key: Buffer.from(this.keys.cells), range_end: prefixEnd(this.keys.cells) },
      this.etcd.callOptions(),
    );
    const out: CellPresence[] = [];
    for (const kv of res.kvs) {
      const rec = parse(kv);
      if (rec) out.push(rec.cellPresence);
    }
    return out;
  }

  async get(cellId: string): Promise<CellPresence | undefined> {
    const kv = await this.read(Buffer.from(this.keys.cell(cellId)));
    return kv ? parse(kv)?.cellPresence : undefined;
  }

  private async read(key: Buffer): Promise<IKeyValue | undefined> {
    const res = await this.etcd.client.kv.range({ key }, this.etcd.callOptions());
    return res.kvs[0];
  }
}

function parse(kv: IKeyValue): { ttlMs: number; cellPresence: CellPresence } | undefined {
  try {
    const rec = JSON.parse(kv.value.toString()) as Record;
    return { ttlMs: rec.ttlMs, cellPresence: fromJson(CellPresenceSchema, rec.cell, { ignoreUnknownFields: true }) };
  } catch {
    return undefined;
  }
}

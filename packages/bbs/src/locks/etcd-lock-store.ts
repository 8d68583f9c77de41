import { DiegoError } from "@diego/models";
import type { IKeyValue } from "etcd3";
import type { EtcdConnection } from "../etcd/etcd-connection.js";
import type { Leases } from "../etcd/leases.js";
import type { Keys } from "../keys.js";
import { heldByOther, type LockRecord, type LockStore } from "./lock-store.js";

interface Stored extends LockRecord {
  ttlMs: number;
}

const ATTEMPTS = 5;

/**
 * Locks in etcd: `<prefix>/locks/<key>` holds {owner, value, ttlMs} under a lease of the TTL. Taking a
 * free lock is a create-if-absent transaction; refreshing keeps the lease alive by id (any BBS
 * instance can do it); when the holder stops refreshing, the lease expires and the key goes with it.
 */
export class EtcdLockStore implements LockStore {
  constructor(
    private readonly etcd: EtcdConnection,
    private readonly leases: Leases,
    private readonly keys: Keys,
  ) {}

  async lock(key: string, owner: string, value: string, ttlMs: number): Promise<void> {
    const k = Buffer.from(this.keys.lock(key));
    const v = Buffer.from(JSON.stringify({ owner, value, ttlMs } satisfies Stored));
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const current = await this.read(k);
      if (!current) {
        const lease = await this.leases.grant(ttlMs);
        const res = await this.etcd.client.kv.txn(
          {
            compare: [{ key: k, target: "Create", result: "Equal", create_revision: 0 }],
            success: [{ request_put: { key: k, value: v, lease } }],
          },
          this.etcd.callOptions(),
        );
        if (res.succeeded) return;
        await this.leases.revoke(lease).catch(() => undefined);
        continue;
      }
      const held = parse(current);
      if (held && held.owner !== owner) throw heldByOther(key, held.owner);
      const sameLease = held?.ttlMs === ttlMs && current.lease !== "0";
      if (sameLease && !(await this.leases.keepAlive(current.lease))) continue; // expired just now: take it afresh
      if (sameLease && current.value.equals(v)) return;
      const lease = sameLease ? current.lease : await this.leases.grant(ttlMs);
      const res = await this.etcd.client.kv.txn(
        {
          compare: [{ key: k, target: "Mod", result: "Equal", mod_revision: current.mod_revision }],
          success: [{ request_put: { key: k, value: v, lease } }],
        },
        this.etcd.callOptions(),
      );
      if (res.succeeded) {
        if (!sameLease && current.lease !== "0") await this.leases.revoke(current.lease).catch(() => undefined);
        return;
      }
      if (!sameLease) await this.leases.revoke(lease).catch(() => undefined);
    }
    throw new DiegoError("ABORTED", `lock ${JSON.stringify(key)} kept changing; try again`);
  }

  async release(key: string, owner: string): Promise<void> {
    const k = Buffer.from(this.keys.lock(key));
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const current = await this.read(k);
      if (!current) return;
      const held = parse(current);
      if (held && held.owner !== owner) throw heldByOther(key, held.owner);
      const res = await this.etcd.client.kv.txn(
        {
          compare: [{ key: k, target: "Mod", result: "Equal", mod_revision: current.mod_revision }],
          success: [{ request_delete_range: { key: k } }],
        },
        this.etcd.callOptions(),
      );
      if (res.succeeded) {
        if (current.lease !== "0") await this.leases.revoke(current.lease).catch(() => undefined);
        return;
      }
    }
    throw new DiegoError("ABORTED", `lock ${JSON.stringify(key)} kept changing; try again`);
  }

  async fetch(key: string): Promise<LockRecord | undefined> {
    const current = await this.read(Buffer.from(this.keys.lock(key)));
    const held = current && parse(current);
    return held ? { owner: held.owner, value: held.value } : undefined;
  }

  private async read(key: Buffer): Promise<IKeyValue | undefined> {
    const res = await this.etcd.client.kv.range({ key }, this.etcd.callOptions());
    return res.kvs[0];
  }
}

function parse(kv: IKeyValue): Stored | undefined {
  try {
    return JSON.parse(kv.value.toString()) as Stored;
  } catch {
    return undefined;
  }
}

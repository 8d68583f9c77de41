import type { EtcdConnection } from "./etcd-connection.js";

/** etcd leases by id, so that any BBS instance can refresh a lease another one granted. */
export class Leases {
  constructor(private readonly etcd: EtcdConnection) {}

  async grant(ttlMs: number): Promise<string> {
    const res = await this.etcd.client.leaseClient.leaseGrant(
      { TTL: ttlSeconds(ttlMs), ID: 0 },
      this.etcd.callOptions(),
    );
    return res.ID;
  }

  /** Refreshes the lease to its full TTL; false when it has expired or was revoked. */
  async keepAlive(id: string): Promise<boolean> {
    const stream = await this.etcd.client.leaseClient.leaseKeepAlive(this.etcd.callOptions());
    try {
      const res = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on("data", resolve);
        stream.on("error", reject);
        stream.on("end", () => reject(new Error("lease keepalive stream ended")));
        stream.write({ ID: id });
      });
      return Number(res.TTL) > 0;
    } finally {
      stream.end();
    }
  }

  /** Revokes the lease (its keys go with it); a lease that is gone already is fine. */
  async revoke(id: string): Promise<void> {
    try {
      await this.etcd.client.leaseClient.leaseRevoke({ ID: id }, this.etcd.callOptions());
    } catch (err) {
      if (!/lease not found/i.test((err as Error).message)) throw err;
    }
  }
}

/** etcd leases count whole seconds (and etcd raises very short ones to its minimum, about 2 s). */
export function ttlSeconds(ttlMs: number): number {
  return Math.max(1, Math.ceil(ttlMs / 1000));
}

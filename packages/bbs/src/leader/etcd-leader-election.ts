import type { Logger } from "@diego/kit";
import type { Lease } from "etcd3";
import type { EtcdConnection } from "../etcd/etcd-connection.js";
import { ttlSeconds } from "../etcd/leases.js";
import type { Leadership } from "./leadership.js";

export interface EtcdLeaderElectionOptions {
  etcd: EtcdConnection;
  /** The key whose holder leads, e.g. <prefix>/leader. */
  key: string;
  instanceId: string;
  /** The lease TTL: a leader that dies (kill -9) is replaced within it. */
  ttlMs: number;
  /** Pause before trying again after an error, and the longest wait between checks of a held key. */
  retryIntervalMs: number;
  logger: Logger;
}

/**
 * Leader election through one etcd key held under a lease: the instance whose create-if-absent
 * transaction wins leads for as long as its lease lives. The others watch the key and try again the
 * moment it goes (a leader that stops revokes its lease; one that is killed loses it after the TTL).
 * Two leaders could overlap only briefly after a lease loss, and every write is a CAS anyway.
 */
export class EtcdLeaderElection implements Leadership {
  private readonly listeners = new Set<(leader: boolean) => void>();
  private leader = false;
  private stopped = false;
  private wake?: () => void;
  private loop?: Promise<void>;

  constructor(private readonly options: EtcdLeaderElectionOptions) {}

  async start(): Promise<void> {
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
  }

  isLeader(): boolean {
    return this.leader;
  }

  async leaderId(): Promise<string | undefined> {
    const res = await this.options.etcd.client.kv.range(
      { key: Buffer.from(this.options.key) },
      this.options.etcd.callOptions(),
    );
    return res.kvs[0]?.value.toString() || undefined;
  }

  onChange(listener: (leader: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private setLeader(leader: boolean): void {
    if (leader === this.leader) return;
    this.leader = leader;
    this.options.logger.info(
      { instanceId: this.options.instanceId, leader },
      leader ? "became leader" : "no longer leader",
    );
    for (const l of this.listeners) l(leader);
  }

  private async run(): Promise<void> {
    const { etcd, key, instanceId, logger } = this.options;
    const k = Buffer.from(key);
    while (!this.stopped) {
      let lease: Lease | undefined;
      try {
        lease = etcd.client.lease(ttlSeconds(this.options.ttlMs), { autoKeepAlive: true });
        let lost = false;
        lease.on("lost", (err: Error) => {
          lost = true;
          logger.warn({ err: err.message }, "leader lease lost");
          this.wake?.();
        });
        const leaseId = await etcd.withDeadline(lease.grant(), "granting the leader lease");
        const res = await etcd.client.kv.txn(
          {
            compare: [{ key: k, target: "Create", result: "Equal", create_revision: 0 }],
            success: [{ request_put: { key: k, value: Buffer.from(instanceId), lease: leaseId } }],
            failure: [{ request_range: { key: k } }],
          },
          etcd.callOptions(),
        );
        const revision = Number(res.header.revision);
        if (res.succeeded) {
          this.setLeader(true);
          // Lead until the lease is lost, the key disappears, or we stop.
          for (;;) {
            const held = await this.heldAt(k);
            if (this.stopped || lost || held === undefined) break;
            await this.waitForDelete(k, held + 1, this.options.retryIntervalMs);
          }
          this.setLeader(false);
        } else {
          const holder = res.responses[0]?.response_range?.kvs?.[0]?.value?.toString();
          logger.debug({ holder }, "another instance leads");
        }
        await release(lease);
        lease = undefined;
        if (!res.succeeded && !this.stopped) await this.waitForDelete(k, revision + 1, this.options.retryIntervalMs);
      } catch (err) {
        this.setLeader(false);
        if (lease) await release(lease);
        logger.warn({ err: (err as Error).message }, "leader election failed; retrying");
        await this.sleep(this.options.retryIntervalMs);
      }
    }
    this.setLeader(false);
  }

  /** The revision at which this instance was seen holding the key, or undefined when it does not. */
  private async heldAt(k: Buffer): Promise<number | undefined> {
    const res = await this.options.etcd.client.kv.range({ key: k }, this.options.etcd.callOptions());
    const kv = res.kvs[0];
    return kv !== undefined && kv.value.toString() === this.options.instanceId
      ? Number(res.header.revision)
      : undefined;
  }

  /** Resolves when the key is deleted (from `revision` on), after `timeoutMs`, or on stop / lease loss. */
  private async waitForDelete(k: Buffer, revision: number, timeoutMs: number): Promise<void> {
    const watcher = await this.options.etcd.watch((b) => b.key(k).only("delete").startRevision(String(revision)));
    try {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        this.wake = done;
        watcher.on("delete", done);
        watcher.on("error", done);
      });
    } finally {
      this.wake = undefined;
      await watcher.cancel().catch(() => undefined);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

/** Revokes the lease; if etcd cannot be told, at least stops keeping it alive (it then expires). */
async function release(lease: Lease): Promise<void> {
  try {
    await lease.revoke();
  } catch {
    (lease as unknown as { close(): void }).close();
  }
}

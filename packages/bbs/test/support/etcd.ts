import { randomBytes } from "node:crypto";
import { createLogger } from "@diego/kit";
import { EtcdConnection } from "../../src/etcd/etcd-connection.js";
import { prefixEnd } from "../../src/keys.js";

export const silent = createLogger("bbs-test", process.env.DIEGO_TEST_LOG ?? "silent");

/** The etcd the jest global setup started for this run. */
export function etcdUrl(): string {
  const url = process.env.DIEGO_TEST_ETCD;
  if (!url) throw new Error("DIEGO_TEST_ETCD is not set (the jest global setup starts etcd)");
  return url;
}

/** A key prefix no other test uses, so that tests can share one etcd. */
export function uniquePrefix(name: string): string {
  return `/test-bbs/${name}-${randomBytes(4).toString("hex")}`;
}

export async function connect(): Promise<EtcdConnection> {
  const etcd = new EtcdConnection({ endpoints: [etcdUrl()], requestTimeoutMs: 5_000, probeIntervalMs: 1_000, logger: silent });
  await etcd.start();
  return etcd;
}

/** Deletes every key under the prefix. */
export async function wipe(etcd: EtcdConnection, prefix: string): Promise<void> {
  await etcd.client.kv.deleteRange({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v as T;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

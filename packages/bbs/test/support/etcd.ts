import { randomBytes } from "node:crypto";
import { eventually } from "@diego/testing";
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
  const etcd = new EtcdConnection({
    endpoints: [etcdUrl()],
    requestTimeoutMs: 5_000,
    probeIntervalMs: 1_000,
    logger: silent,
  });
  await etcd.start();
  return etcd;
}

/** Deletes every key under the prefix. */
export async function wipe(etcd: EtcdConnection, prefix: string): Promise<void> {
  await etcd.client.kv.deleteRange({ key: Buffer.from(prefix), range_end: prefixEnd(prefix) });
}

/** Polls until `fn` gives a value (see eventually); 20 s by default. */
export function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
): Promise<T> {
  return eventually(what, fn, timeoutMs, 50);
}

import { DiegoError } from "@diego/models";
import type { CallOptions, GenServiceMethods, ServiceClient } from "./types.js";

/** `host:port,host:port` → the addresses, in order; one address is a list of one. */
export function splitAddresses(address: string): string[] {
  return address
    .split(",")
    .map((a) => a.trim())
    .filter((a) => a !== "");
}

/**
 * Whether a failed call may go to the next address: the server was not reached (UNAVAILABLE: down,
 * refusing, not ready) or did not answer within the deadline. Any other answer is the server's own.
 */
export function shouldFailOver(err: unknown, signal: AbortSignal | undefined): boolean {
  if (signal?.aborted) return false;
  return DiegoError.is(err, "UNAVAILABLE") || DiegoError.is(err, "DEADLINE_EXCEEDED");
}

/** The order in which to try `count` addresses: the one that answered last first, then the others in turn. */
export function attemptOrder(count: number, preferred: number): number[] {
  return Array.from({ length: count }, (_, i) => (preferred + i) % count);
}

/**
 * One client over several servers of the same service (instances that share their state, as the BBS
 * instances on one etcd do). A call goes to the server that answered last; when that one is down, not
 * ready or past the deadline, the call goes to the next (each attempt with its own deadline), and the
 * one that answers becomes the first choice. A stream fails over only until its first message. When
 * every server fails, the error names each address with its failure.
 */
export function failoverClient<S extends GenServiceMethods>(
  methods: { localName: string; methodKind: string }[],
  addresses: string[],
  clients: ServiceClient<S>[],
): ServiceClient<S> {
  let preferred = 0;
  type Fn = (req: unknown, opts?: CallOptions) => unknown;
  const method = (client: ServiceClient<S>, name: string) => (client as unknown as Record<string, Fn>)[name]!;

  const combined = (failures: { address: string; err: DiegoError }[]): DiegoError => {
    const last = failures[failures.length - 1]!.err;
    const detail = failures.map((f) => `${f.address}: ${f.err.message}`).join("; ");
    return new DiegoError(last.code, `no server answered (${detail})`, last.violations);
  };

  const unary = (name: string) => async (req: unknown, opts?: CallOptions) => {
    const failures: { address: string; err: DiegoError }[] = [];
    for (const i of attemptOrder(clients.length, preferred)) {
      try {
        const value = await method(clients[i]!, name)(req, opts);
        preferred = i;
        return value;
      } catch (err) {
        if (!shouldFailOver(err, opts?.signal)) throw err;
        failures.push({ address: addresses[i]!, err: err as DiegoError });
      }
    }
    throw combined(failures);
  };

  const stream = (name: string) =>
    async function* (req: unknown, opts?: CallOptions): AsyncGenerator<unknown> {
      const failures: { address: string; err: DiegoError }[] = [];
      for (const i of attemptOrder(clients.length, preferred)) {
        let received = false;
        try {
          for await (const item of method(clients[i]!, name)(req, opts) as AsyncIterable<unknown>) {
            if (!received) preferred = i;
            received = true;
            yield item;
          }
          preferred = i;
          return;
        } catch (err) {
          if (received || !shouldFailOver(err, opts?.signal)) throw err;
          failures.push({ address: addresses[i]!, err: err as DiegoError });
        }
      }
      throw combined(failures);
    };

  const out: Record<string, unknown> = { close: () => clients.forEach((c) => c.close()) };
  for (const m of methods)
    out[m.localName] = m.methodKind === "server_streaming" ? stream(m.localName) : unary(m.localName);
  return out as ServiceClient<S>;
}

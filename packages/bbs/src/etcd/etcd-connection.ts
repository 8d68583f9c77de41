import { readFileSync } from "node:fs";
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, retry } from "cockatiel";
import {
  Etcd3,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  type IOptions,
  type Watcher,
  type WatchBuilder,
} from "etcd3";
import type { Logger } from "@diego/kit";

export interface EtcdTlsFiles {
  caFile: string;
  certFile?: string;
  keyFile?: string;
}

export interface EtcdConnectionOptions {
  endpoints: string[];
  tls?: EtcdTlsFiles;
  /** Deadline of each etcd request. */
  requestTimeoutMs: number;
  /** How often reachability is probed (readiness). */
  probeIntervalMs: number;
  logger: Logger;
}

type FaultHandling = NonNullable<IOptions["faultHandling"]>;

/** The largest request sent to etcd (its own limit is 1.5 MiB); a bigger one fails here, not there. */
const MAX_SEND_BYTES = 2 * 1024 * 1024;

/**
 * Whether an etcd error says the member cannot be reached (down, hung past the deadline), as
 * opposed to one request being refused (too large, invalid, a lost compare): only the former may
 * open a member's circuit breaker or be retried on another member.
 */
export function isEtcdUnreachable(err: Error): boolean {
  if (err instanceof GRPCDeadlineExceededError) return true;
  return err instanceof GRPCUnavailableError && !/too large|larger than max|exceed/i.test(err.message);
}

/**
 * The etcd client's fault handling (it otherwise counts any "recoverable" error, RESOURCE_EXHAUSTED
 * included, towards a breaker that then refuses every caller): per member, a breaker that opens
 * after 5 consecutive unreachable errors and lets a call through again after 1 s, then 2, 4, up to
 * 5 s while the member stays unreachable (back to 1 s once a call gets through), so it never keeps
 * the BBS unready for long once etcd is back, and a member that hangs (its calls run to their
 * deadline) costs one call every 5 s, not every second; across members, one more attempt on another
 * after a short jittered backoff; watches reconnect with jittered backoff capped at 2 s.
 */
export function etcdFaultHandling(): FaultHandling {
  const unreachable = handleWhen(isEtcdUnreachable);
  return {
    host: () =>
      circuitBreaker(unreachable, {
        halfOpenAfter: new ExponentialBackoff({ initialDelay: 1_000, maxDelay: 5_000 }),
        breaker: new ConsecutiveBreaker(5),
      }),
    global: retry(unreachable, {
      maxAttempts: 1,
      backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 500 }),
    }),
    // etcd3 calls next() on it, as on its own default (a factory, which its type does not say).
    watchBackoff: new ExponentialBackoff({
      initialDelay: 250,
      maxDelay: 2_000,
    }) as unknown as FaultHandling["watchBackoff"],
  };
}

/**
 * The BBS's one etcd client (every member of the cluster as an endpoint), with a reachability
 * probe: `healthy()` turns false while etcd does not answer, which the BBS reports as not ready.
 */
export class EtcdConnection {
  readonly client: Etcd3;
  private up = false;
  private probeTimer?: NodeJS.Timeout;
  private readonly listeners = new Set<(up: boolean) => void>();

  constructor(private readonly options: EtcdConnectionOptions) {
    const etcdOptions: IOptions = {
      hosts: options.endpoints,
      grpcOptions: {
        "grpc.max_receive_message_length": 64 * 1024 * 1024,
        "grpc.max_send_message_length": MAX_SEND_BYTES,
        // A member that is hung (SIGSTOP) or cut off is found by keepalive, not only by deadlines.
        "grpc.keepalive_time_ms": 10_000,
        "grpc.keepalive_timeout_ms": 5_000,
      },
      faultHandling: etcdFaultHandling(),
    };
    if (options.tls) {
      etcdOptions.credentials = {
        rootCertificate: readFileSync(options.tls.caFile),
        privateKey: options.tls.keyFile ? readFileSync(options.tls.keyFile) : undefined,
        certChain: options.tls.certFile ? readFileSync(options.tls.certFile) : undefined,
      };
    }
    this.client = new Etcd3(etcdOptions);
  }

  /** Call options with this connection's deadline. */
  callOptions(timeoutMs = this.options.requestTimeoutMs): { deadline: Date } {
    return { deadline: new Date(Date.now() + timeoutMs) };
  }

  /** Resolves with `promise`, or rejects once the request deadline passed (etcd hung or unreachable). */
  async withDeadline<T>(promise: Promise<T>, what: string, timeoutMs = this.options.requestTimeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        promise,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`etcd: ${what} timed out after ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Creates a watch within the request deadline (a watch created too late is cancelled). */
  async watch(build: (builder: WatchBuilder) => WatchBuilder): Promise<Watcher> {
    const creating = build(this.client.watch()).create();
    try {
      return await this.withDeadline(creating, "creating a watch");
    } catch (err) {
      void creating.then((w) => w.cancel()).catch(() => undefined);
      throw err;
    }
  }

  /** Waits until etcd answers once (or throws after `timeoutMs`), then probes it periodically. */
  async start(timeoutMs = 30_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      if (await this.probe()) break;
      if (Date.now() > until)
        throw new Error(`etcd at ${this.options.endpoints.join(",")} did not answer within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 250));
    }
    const loop = () => {
      this.probeTimer = setTimeout(
        () => void this.probe().finally(() => this.probeTimer && loop()),
        this.options.probeIntervalMs,
      );
      this.probeTimer.unref();
    };
    loop();
  }

  healthy(): boolean {
    return this.up;
  }

  onHealthChange(listener: (up: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Reports a failed request at once rather than waiting for the next probe. */
  reportFailure(): void {
    void this.probe();
  }

  private async probe(): Promise<boolean> {
    let ok: boolean;
    try {
      await this.client.maintenance.status(this.callOptions(Math.min(2_000, this.options.requestTimeoutMs)));
      ok = true;
    } catch (err) {
      if (this.up) this.options.logger.warn({ err: (err as Error).message }, "etcd unreachable");
      ok = false;
    }
    if (ok !== this.up) {
      this.up = ok;
      if (ok) this.options.logger.info({ endpoints: this.options.endpoints }, "etcd reachable");
      for (const l of this.listeners) l(ok);
    }
    return ok;
  }

  async close(): Promise<void> {
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = undefined;
    this.listeners.clear();
    this.client.close();
  }
}

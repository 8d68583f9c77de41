import { readFileSync } from "node:fs";
import { Etcd3, type IOptions } from "etcd3";
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

/**
 * The BBS's one etcd client, with a reachability probe: `healthy()` turns false while etcd does not
 * answer, which the BBS reports as not ready.
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
        "grpc.max_send_message_length": 16 * 1024 * 1024,
      },
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

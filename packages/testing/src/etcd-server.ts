import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "./eventually.js";
import { freePort } from "./free-port.js";

/**
 * A private etcd on free loopback ports with a data dir of its own; stop() kills it, remove() deletes its
 * data. `EtcdServer.startCluster(3)` starts the members of one cluster instead.
 */
export class EtcdServer {
  private child?: ChildProcess;
  /** name=peer URL of every member of this server's cluster (itself alone by default). */
  private initialCluster: string;
  private clusterToken: string;

  private constructor(
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
    readonly name = "diego-test",
  ) {
    this.initialCluster = `${name}=${this.peerUrl}`;
    this.clusterToken = `diego-${peerPort}`;
  }

  get url(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }

  static async start(): Promise<EtcdServer> {
    const server = new EtcdServer(await freePort(), await freePort(), mkdtempSync(join(tmpdir(), "diego-etcd-")));
    await server.resume();
    return server;
  }

  /** The members of one new etcd cluster, started together (each answers /health once there is a leader). */
  static async startCluster(size: number): Promise<EtcdServer[]> {
    const members: EtcdServer[] = [];
    for (let i = 0; i < size; i++) {
      const dir = mkdtempSync(join(tmpdir(), "diego-etcd-"));
      members.push(new EtcdServer(await freePort(), await freePort(), dir, `member-${i}`));
    }
    const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
    for (const m of members) {
      m.initialCluster = initialCluster;
      m.clusterToken = members[0]!.clusterToken;
    }
    await Promise.all(members.map((m) => m.resume()));
    return members;
  }

  /** Whether this member is its cluster's leader now (false when it does not answer). */
  async isLeader(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/v3/maintenance/status`, {
        method: "POST",
        body: "{}",
        signal: AbortSignal.timeout(2_000),
      });
      const status = (await res.json()) as { header?: { member_id?: string }; leader?: string };
      return status.leader !== undefined && status.leader === status.header?.member_id;
    } catch {
      return false;
    }
  }

  /** The value of a key, read through etcd's JSON gateway; undefined when absent. */
  async get(key: string): Promise<string | undefined> {
    const res = await fetch(`${this.url}/v3/kv/range`, {
      method: "POST",
      body: JSON.stringify({ key: Buffer.from(key).toString("base64") }),
      signal: AbortSignal.timeout(5_000),
    });
    const body = (await res.json()) as { kvs?: { value?: string }[] };
    const value = body.kvs?.[0]?.value;
    return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
  }

  /** Kills the process at once (SIGKILL), as a crash would. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise((resolve) => {
      child.once("exit", resolve);
      child.kill("SIGKILL");
    });
  }

  /** (Re)starts etcd on the same ports and data. */
  async resume(): Promise<void> {
    const child = spawn(
      "etcd",
      [
        "--name",
        this.name,
        "--data-dir",
        this.dataDir,
        "--listen-client-urls",
        this.url,
        "--advertise-client-urls",
        this.url,
        "--listen-peer-urls",
        this.peerUrl,
        "--initial-advertise-peer-urls",
        this.peerUrl,
        "--initial-cluster",
        this.initialCluster,
        "--initial-cluster-token",
        this.clusterToken,
      ],
      { stdio: "ignore" },
    );
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    this.child = child;
    await Promise.race([
      eventually(`etcd on ${this.url}`, async () => (await fetch(`${this.url}/health`)).ok, 30_000, 100),
      spawnError.then((err) => {
        throw new Error(`cannot start etcd (scripts/test installs etcd-server): ${err.message}`);
      }),
    ]);
  }

  /** Freezes etcd (SIGSTOP): it stops answering without closing connections. */
  freeze(): void {
    this.child?.kill("SIGSTOP");
  }

  thaw(): void {
    this.child?.kill("SIGCONT");
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise((resolve) => {
      child.once("exit", resolve);
      child.kill("SIGCONT");
      child.kill("SIGTERM");
    });
  }

  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

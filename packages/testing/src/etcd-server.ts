import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "./eventually.js";
import { freePorts } from "./free-port.js";

/** How many times a server or cluster is started on new ports when etcd exits before it is healthy. */
const START_ATTEMPTS = 3;

/** etcd exited before it answered /health: its ports were taken meanwhile, most often. */
class EarlyExit extends Error {}

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
    const [server] = await EtcdServer.startMembers(1, () => "diego-test");
    return server!;
  }

  /** The members of one new etcd cluster, started together (each answers /health once there is a leader). */
  static startCluster(size: number): Promise<EtcdServer[]> {
    return EtcdServer.startMembers(size, (i) => `member-${i}`);
  }

  /**
   * Starts `size` members of one cluster on fresh ports and data dirs. The ports are free when chosen, but
   * another process may take one before etcd binds it; then that member exits, and all of them are started
   * again on new ports (at most START_ATTEMPTS times).
   */
  private static async startMembers(size: number, name: (i: number) => string): Promise<EtcdServer[]> {
    for (let attempt = 1; ; attempt++) {
      const ports = await freePorts(2 * size);
      const members = Array.from(
        { length: size },
        (_, i) => new EtcdServer(ports[2 * i]!, ports[2 * i + 1]!, mkdtempSync(join(tmpdir(), "diego-etcd-")), name(i)),
      );
      const initialCluster = members.map((m) => `${m.name}=${m.peerUrl}`).join(",");
      for (const m of members) {
        m.initialCluster = initialCluster;
        m.clusterToken = members[0]!.clusterToken;
      }
      try {
        await Promise.all(members.map((m) => m.resume()));
        return members;
      } catch (err) {
        await Promise.all(members.map((m) => m.remove()));
        if (!(err instanceof EarlyExit) || attempt >= START_ATTEMPTS) throw err;
      }
    }
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
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    // etcd logs to stderr: it is always read (a full pipe would block etcd), and its end kept for errors.
    let logTail = "";
    child.stderr?.on("data", (chunk: Buffer) => {
      logTail = (logTail + chunk.toString("utf8")).slice(-2_000);
    });
    const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    this.child = child;
    let healthy = false;
    await Promise.race([
      eventually(`etcd on ${this.url}`, async () => (await fetch(`${this.url}/health`)).ok, 30_000, 100).then(() => {
        healthy = true;
      }),
      spawnError.then((err) => {
        throw new Error(`cannot start etcd (scripts/test installs etcd-server): ${err.message}`);
      }),
      exited.then(() => {
        if (healthy) return;
        throw new EarlyExit(`etcd ${this.name} on ${this.url} exited before it was healthy: ${logTail.trim()}`);
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

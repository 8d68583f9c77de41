import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { eventually } from "./eventually.js";
import { freePort } from "./free-port.js";

/** A private etcd on free loopback ports with a data dir of its own; stop() kills it, remove() deletes its data. */
export class EtcdServer {
  private child?: ChildProcess;

  private constructor(
    readonly clientPort: number,
    readonly peerPort: number,
    readonly dataDir: string,
  ) {}

  get url(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  static async start(): Promise<EtcdServer> {
    const server = new EtcdServer(await freePort(), await freePort(), mkdtempSync(join(tmpdir(), "diego-etcd-")));
    await server.resume();
    return server;
  }

  /** (Re)starts etcd on the same ports and data. */
  async resume(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    const child = spawn(
      "etcd",
      [
        "--name",
        "diego-test",
        "--data-dir",
        this.dataDir,
        "--listen-client-urls",
        this.url,
        "--advertise-client-urls",
        this.url,
        "--listen-peer-urls",
        peer,
        "--initial-advertise-peer-urls",
        peer,
        "--initial-cluster",
        `diego-test=${peer}`,
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

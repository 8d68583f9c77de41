import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** An etcd of the benchmark's own: a data dir of its own and free ports; `stop` removes both. */
export interface LocalEtcd {
  url: string;
  /** Freezes etcd (SIGSTOP): it stops answering without closing connections. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export async function startLocalEtcd(): Promise<LocalEtcd> {
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), "diego-bench-etcd-"));
  const url = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const child: ChildProcess = spawn(
    "etcd",
    [
      "--name", "diego-bench", "--data-dir", dataDir,
      "--listen-client-urls", url, "--advertise-client-urls", url,
      "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
      "--initial-cluster", `diego-bench=${peer}`,
      "--quota-backend-bytes", String(4 * 1024 * 1024 * 1024),
    ],
    { stdio: "ignore" },
  );
  const until = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await fetch(`${url}/health`)).ok) break;
    } catch {
      // not up yet
    }
    if (Date.now() > until || child.exitCode !== null) throw new Error("etcd did not start (is the etcd binary installed?)");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pause: () => void child.kill("SIGSTOP"),
    resume: () => void child.kill("SIGCONT"),
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGCONT");
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

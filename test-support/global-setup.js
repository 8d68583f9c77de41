// Starts a private etcd for this test run (unless DIEGO_TEST_ETCD names one already) on a free port
// with a data dir of its own; global-teardown.js stops it and removes the data dir.
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function waitHealthy(url, deadlineMs) {
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      const res = await fetch(`${url}/health`);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`etcd at ${url} did not become healthy`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export default async function globalSetup() {
  if (process.env.DIEGO_TEST_ETCD) return;
  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const dataDir = mkdtempSync(join(tmpdir(), "diego-test-etcd-"));
  const url = `http://127.0.0.1:${clientPort}`;
  const child = spawn(
    "etcd",
    [
      "--name", "diego-test",
      "--data-dir", dataDir,
      "--listen-client-urls", url,
      "--advertise-client-urls", url,
      "--listen-peer-urls", `http://127.0.0.1:${peerPort}`,
      "--initial-advertise-peer-urls", `http://127.0.0.1:${peerPort}`,
      "--initial-cluster", `diego-test=http://127.0.0.1:${peerPort}`,
    ],
    { stdio: "ignore", detached: false },
  );
  child.on("error", (err) => {
    throw new Error(`cannot start etcd (is etcd-server installed? scripts/test installs it): ${err.message}`);
  });
  await waitHealthy(url, 20_000);
  process.env.DIEGO_TEST_ETCD = url;
  globalThis.__diegoTestEtcd = { child, dataDir };
}

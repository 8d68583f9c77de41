import { rmSync } from "node:fs";

export default async function globalTeardown() {
  const etcd = globalThis.__diegoTestEtcd;
  if (!etcd) return;
  await new Promise((resolve) => {
    etcd.child.once("exit", resolve);
    etcd.child.kill("SIGTERM");
  });
  rmSync(etcd.dataDir, { recursive: true, force: true });
}

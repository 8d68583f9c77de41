// Starts a private etcd for this test run (unless DIEGO_TEST_ETCD names one already) and puts its URL
// in DIEGO_TEST_ETCD for every test file; global-teardown.js stops it and removes its data.
import { tsImport } from "tsx/esm/api";

export default async function globalSetup() {
  if (process.env.DIEGO_TEST_ETCD) return;
  const { EtcdServer } = await tsImport("../packages/testing/src/etcd-server.ts", import.meta.url);
  const etcd = await EtcdServer.start();
  process.env.DIEGO_TEST_ETCD = etcd.url;
  globalThis.__diegoTestEtcd = etcd;
}

import { EtcdServer } from "@diego/testing";
import { startBbs } from "../src/start-bbs.js";
import { silent, waitFor } from "./support/etcd.js";

test("readiness turns false while etcd does not answer, and back when it does", async () => {
  const etcd = await EtcdServer.start();
  const bbs = await startBbs(
    {
      etcdEndpoints: [etcd.url],
      etcdPrefix: "/readiness",
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      etcdRequestTimeout: 1_000,
    },
    { logger: silent },
  );
  const ready = async () => (await fetch(`http://${bbs.statusAddress}/readyz`)).status;
  try {
    await waitFor("ready", async () => (await ready()) === 200);
    etcd.freeze();
    await waitFor("not ready", async () => (await ready()) === 503);
    etcd.thaw();
    await waitFor("ready again", async () => (await ready()) === 200, 30_000);
  } finally {
    etcd.thaw();
    await bbs.stop();
    await etcd.remove();
  }
});

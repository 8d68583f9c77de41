import { createClient } from "@diego/kit";
import { TaskService } from "@diego/proto";
import { EtcdServer } from "@diego/testing";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { startBbs } from "../src/start-bbs.js";
import { silent, waitFor } from "./support/etcd.js";
import { taskRequest } from "./support/tasks.js";

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

test("requests etcd refuses for their size neither trip the breaker nor make the BBS unready", async () => {
  const etcd = await EtcdServer.start();
  const bbs = await startBbs(
    {
      etcdEndpoints: [etcd.url],
      etcdPrefix: "/readiness-size",
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
    },
    { logger: silent },
  );
  const ready = async () => (await fetch(`http://${bbs.statusAddress}/readyz`)).status;
  const client = createClient(TaskService, bbs.address);
  try {
    await waitFor("ready", async () => (await ready()) === 200);
    // Over etcd's 1.5 MiB request limit (etcd refuses it) and over the client's send limit, on the BBS's own connection.
    const conn = (bbs.store as unknown as { options: { etcd: EtcdConnection } }).options.etcd;
    for (const bytes of [1_800_000, 20_000_000, 1_800_000, 20_000_000, 1_800_000, 20_000_000]) {
      await expect(
        conn.client.kv.put({ key: Buffer.from("/readiness-size/big"), value: Buffer.alloc(bytes) }, conn.callOptions()),
      ).rejects.toThrow();
    }
    // An oversized task is refused (by admission, or at the store before it is sent), never UNAVAILABLE.
    for (let i = 0; i < 6; i++) {
      const err = await client.desireTask(taskRequest({ annotation: "x".repeat(1_100_000) })).catch((e: unknown) => e);
      expect(["INVALID_ARGUMENT", "RESOURCE_EXHAUSTED"]).toContain((err as { code: string }).code);
    }
    expect(await ready()).toBe(200);
    const ok = taskRequest();
    await client.desireTask(ok);
    expect((await client.getTask({ taskGuid: ok.taskGuid })).taskGuid).toBe(ok.taskGuid);
  } finally {
    client.close();
    await bbs.stop();
    await etcd.remove();
  }
});

test("etcd restarted: the BBS is ready again within seconds, its watch resumes, and writes go through", async () => {
  const etcd = await EtcdServer.start();
  const bbs = await startBbs(
    {
      etcdEndpoints: [etcd.url],
      etcdPrefix: "/readiness-restart",
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      etcdRequestTimeout: 1_000,
    },
    { logger: silent },
  );
  const ready = async () => (await fetch(`http://${bbs.statusAddress}/readyz`)).status;
  const client = createClient(TaskService, bbs.address, { defaultTimeoutMs: 3_000 });
  try {
    await waitFor("ready", async () => (await ready()) === 200);
    await etcd.stop();
    await waitFor("not ready", async () => (await ready()) === 503);
    await expect(client.desireTask(taskRequest())).rejects.toMatchObject({ code: "UNAVAILABLE" });
    await etcd.resume();
    const back = Date.now();
    await waitFor("ready again", async () => (await ready()) === 200, 30_000);
    const ok = taskRequest();
    await waitFor(
      "a write to go through",
      () =>
        client.desireTask(ok).then(
          () => true,
          () => false,
        ),
      30_000,
    );
    expect((await client.getTask({ taskGuid: ok.taskGuid })).taskGuid).toBe(ok.taskGuid);
    process.stdout.write(`ready again ${Date.now() - back} ms after etcd restarted\n`);
  } finally {
    client.close();
    await bbs.stop();
    await etcd.remove();
  }
}, 90_000);

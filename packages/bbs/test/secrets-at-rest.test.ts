import { createClient } from "@diego/kit";
import { CellRegistryService, TaskLifecycleService, TaskService } from "@diego/proto";
import type { EtcdConnection } from "../src/etcd/etcd-connection.js";
import { startBbs, type RunningBbs } from "../src/start-bbs.js";
import { TaskSealer } from "../src/store/task-sealer.js";
import { connect, etcdUrl, silent, uniquePrefix, wipe } from "./support/etcd.js";
import { taskRequest } from "./support/tasks.js";

// image_password and secret_env are sealed with AES-256-GCM in etcd (docs/security.md): the raw bytes hold
// neither; keys rotate (several configured, one active, a rewrite at start); no RPC but StartTask shows them.
const PASSWORD = "pw-7f3c9a-never-stored";
const SECRET = "sv-91d2e4-never-stored";
let etcd: EtcdConnection;
let prefix: string;
let bbs: RunningBbs | undefined;

beforeAll(async () => {
  etcd = await connect();
  prefix = uniquePrefix("secrets");
});

afterAll(async () => {
  await bbs?.stop();
  await wipe(etcd, prefix);
  await etcd.close();
});

async function start(values: Record<string, unknown>): Promise<RunningBbs> {
  await bbs?.stop();
  bbs = await startBbs(
    {
      etcdEndpoints: [etcdUrl()],
      etcdPrefix: prefix,
      listenAddress: "127.0.0.1:0",
      statusAddress: "127.0.0.1:0",
      ...values,
    },
    { logger: silent },
  );
  return bbs;
}

async function rawValues(): Promise<Buffer[]> {
  const all = await etcd.client.getAll().prefix(prefix).buffers();
  return Object.values(all);
}

test("without a key an etcd BBS refuses to store secrets, with a clear error", async () => {
  const b = await start({});
  const tasks = createClient(TaskService, b.address);
  await expect(tasks.desireTask(taskRequest({ secretEnv: [{ name: "S", value: SECRET }] }))).rejects.toMatchObject({
    code: "FAILED_PRECONDITION",
    message: expect.stringContaining("no encryption key"),
  });
  await expect(tasks.desireTask(taskRequest({ imageUsername: "u", imagePassword: PASSWORD }))).rejects.toMatchObject({
    code: "FAILED_PRECONDITION",
  });
  tasks.close();
});

test("sealed at rest, never shown but to the claiming cell, still readable after a key rotation", async () => {
  let b = await start({ encryptionKeys: { k1: "first passphrase" } });
  let tasks = createClient(TaskService, b.address);
  const req = taskRequest({
    rootFs: "docker://registry.example/org/app",
    imageUsername: "u",
    imagePassword: PASSWORD,
    secretEnv: [{ name: "TOKEN", value: SECRET }],
  });
  const desired = await tasks.desireTask(req);
  expect(JSON.stringify(desired, (_, v) => (typeof v === "bigint" ? String(v) : v))).not.toMatch(/never-stored/);
  for (const value of await rawValues()) {
    expect(value.includes(PASSWORD)).toBe(false);
    expect(value.includes(SECRET)).toBe(false);
  }
  const stored = (await rawValues()).find((v) => TaskSealer.keyIdOf(v) !== undefined);
  expect(stored && TaskSealer.keyIdOf(stored)).toBe("k1");
  const got = await tasks.getTask({ taskGuid: req.taskGuid });
  expect(got.imagePassword).toBe("");
  expect(got.secretEnv).toEqual([]);
  const listed = (await tasks.listTasks({})).tasks.find((t) => t.taskGuid === req.taskGuid)!;
  expect(listed.imagePassword + JSON.stringify(listed.secretEnv)).not.toMatch(/never-stored/);
  tasks.close();

  // Rotation: a second key becomes active; the rewrite at start seals every task under it.
  b = await start({ encryptionKeys: { k1: "first passphrase", k2: "second" }, activeKeyId: "k2", rewriteTasks: true });
  const resealed = (await rawValues()).filter((v) => TaskSealer.keyIdOf(v) !== undefined);
  expect(resealed.map((v) => TaskSealer.keyIdOf(v))).toEqual(["k2"]);
  // The old key can go: every task is still readable, and the claiming cell gets the secrets.
  b = await start({ encryptionKeys: { k2: "second" } });
  tasks = createClient(TaskService, b.address);
  expect((await tasks.getTask({ taskGuid: req.taskGuid })).taskGuid).toBe(req.taskGuid);
  const registry = createClient(CellRegistryService, b.address);
  await registry.heartbeat({ cell: { cellId: "cell-secret", address: "127.0.0.1:1" }, ttlMs: 60_000n });
  const lifecycle = createClient(TaskLifecycleService, b.address);
  const { task } = await lifecycle.startTask({ taskGuid: req.taskGuid, cellId: "cell-secret" });
  expect(task).toMatchObject({ imagePassword: PASSWORD, secretEnv: [{ name: "TOKEN", value: SECRET }] });
  for (const value of await rawValues()) expect(value.includes(SECRET)).toBe(false);
  for (const c of [tasks, registry, lifecycle]) c.close();
});

import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient, type TlsFiles } from "@diego/kit";
import { TaskService } from "@diego/proto";
import { certFiles, Cluster, fixtureTask, REPO_ROOT, uniqueGuid } from "../src/index.js";

// Client scopes (docs/security.md) on real processes with mutual TLS: a client limited to some domains
// desires, lists, watches and reads only there (another domain's task is not found to it), and only the
// clients named may desire privileged tasks.
const run = promisify(execFile);
let cluster: Cluster;
let certs: string;
const files = (name: string): TlsFiles => certFiles(certs, name);
const as = (name: string) =>
  createClient(TaskService, cluster.bbsAddress, { tls: files(name), defaultTimeoutMs: 10_000 });

beforeAll(async () => {
  certs = mkdtempSync(join(tmpdir(), "diego-scope-certs-"));
  await run(join(REPO_ROOT, "scripts/make-certs"), [certs, "--cells", "1", "--client", "ci", "--client", "ops"]);
  cluster = await Cluster.start({
    cells: [],
    tls: { server: files, client: files("client") },
    bbsArgs: ["--client-domains", "ci=builds|tests", "--privileged-clients", "ops"],
  });
}, 180_000);

afterAll(() => cluster?.stop());

test("a client limited to domains acts only there; other domains' tasks are not found to it", async () => {
  const ci = as("client-ci");
  try {
    const mine = uniqueGuid("scope");
    await expect(ci.desireTask(fixtureTask("hello.json", mine, { domain: "builds" }))).resolves.toBeDefined();
    await expect(
      ci.desireTask(fixtureTask("hello.json", uniqueGuid("scope"), { domain: "web" })),
    ).rejects.toMatchObject({
      code: "PERMISSION_DENIED",
      message: expect.stringContaining('client "ci" may not use domain "web" (its domains: builds, tests)'),
    });
    await expect(ci.listTasks({})).rejects.toMatchObject({
      code: "PERMISSION_DENIED",
      message: expect.stringContaining("name one in domain"),
    });
    const listed = await ci.listTasks({ domain: "builds" });
    expect(listed.tasks.map((t) => t.taskGuid)).toContain(mine);
    const watchOther = async () => {
      for await (const e of ci.watchTasks({ domain: "web" })) void e;
    };
    await expect(watchOther()).rejects.toMatchObject({ code: "PERMISSION_DENIED" });

    // A task of another domain, desired by an unlimited client.
    const theirs = uniqueGuid("scope");
    await cluster.tasks.desireTask(fixtureTask("hello.json", theirs, { domain: "web" }));
    const notFound = { code: "NOT_FOUND", message: expect.stringContaining(theirs) };
    await expect(ci.getTask({ taskGuid: theirs })).rejects.toMatchObject(notFound);
    await expect(ci.cancelTask({ taskGuid: theirs })).rejects.toMatchObject(notFound);
    await expect(ci.deleteTask({ taskGuid: theirs })).rejects.toMatchObject(notFound);
    expect((await cluster.tasks.getTask({ taskGuid: theirs })).domain).toBe("web");
    await expect(
      ci.taskBatch({
        items: [
          { call: { case: "desire", value: fixtureTask("hello.json", uniqueGuid("scope"), { domain: "builds" }) } },
          { call: { case: "cancel", value: { taskGuid: theirs } } },
        ],
      }),
    ).rejects.toMatchObject({ code: "NOT_FOUND", message: expect.stringContaining("items[1]:") });
    await expect(ci.cancelTask({ taskGuid: mine })).resolves.toBeDefined();
  } finally {
    ci.close();
  }
});

test("only the clients named may desire privileged tasks", async () => {
  const ops = as("client-ops");
  try {
    await expect(
      cluster.tasks.desireTask(fixtureTask("hello.json", uniqueGuid("priv"), { privileged: true })),
    ).rejects.toMatchObject({
      code: "PERMISSION_DENIED",
      message: expect.stringContaining('client "diego-client" may not desire privileged tasks'),
    });
    const guid = uniqueGuid("priv");
    await expect(ops.desireTask(fixtureTask("hello.json", guid, { privileged: true }))).resolves.toBeDefined();
    await ops.cancelTask({ taskGuid: guid });
  } finally {
    ops.close();
  }
});

import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { createClient, type TlsFiles } from "@diego/kit";
import { FailureReason } from "@diego/models";
import { auctioneerv1, cellv1, CellRegistryService, LockService, TaskLifecycleService, TaskState } from "@diego/proto";
import { certFiles, Cluster, fixtureTask, REPO_ROOT, uniqueGuid, waitForState } from "../src/index.js";

// Roles from certificates (docs/security.md), checked against real processes with mutual TLS: a client
// certificate may call no internal RPC; a cell may act only as itself; a privileged task on cells
// without --allow-privileged fails placement with its reason.
const run = promisify(execFile);
let cluster: Cluster;
let certs: string;
const files = (name: string): TlsFiles => certFiles(certs, name);

beforeAll(async () => {
  certs = mkdtempSync(join(tmpdir(), "diego-authz-certs-"));
  await run(join(REPO_ROOT, "scripts/make-certs"), [certs]);
  cluster = await Cluster.start({ tls: { server: files, client: files("client") } });
}, 180_000);

afterAll(() => cluster?.stop());

const denied = { code: "PERMISSION_DENIED" };

test("with the client certificate every internal RPC is PERMISSION_DENIED, naming the role needed", async () => {
  const opts = { tls: files("client"), defaultTimeoutMs: 10_000 };
  const lifecycle = createClient(TaskLifecycleService, cluster.bbsAddress, opts);
  const registry = createClient(CellRegistryService, cluster.bbsAddress, opts);
  const locks = createClient(LockService, cluster.bbsAddress, opts);
  const rep = createClient(cellv1.CellRepService, cluster.cell("cell-1").address, opts);
  try {
    const guid = uniqueGuid("authz");
    await expect(lifecycle.startTask({ taskGuid: guid, cellId: "cell-1" })).rejects.toMatchObject({
      ...denied,
      message: expect.stringContaining("needs role cell; the caller is client diego-client"),
    });
    await expect(lifecycle.runningTask({ taskGuid: guid, cellId: "cell-1" })).rejects.toMatchObject(denied);
    await expect(lifecycle.completeTask({ taskGuid: guid, cellId: "cell-1" })).rejects.toMatchObject(denied);
    await expect(lifecycle.rejectTask({ taskGuid: guid, rejectionReason: "x" })).rejects.toMatchObject({
      ...denied,
      message: expect.stringContaining("needs role cell or auctioneer"),
    });
    await expect(
      registry.heartbeat({ cell: { cellId: "fake", address: "169.254.169.254:80" }, ttlMs: 10_000n }),
    ).rejects.toMatchObject(denied);
    await expect(registry.deregister({ cellId: "cell-1" })).rejects.toMatchObject(denied);
    await expect(locks.fetchLock({ key: "auctioneer" })).rejects.toMatchObject({
      ...denied,
      message: expect.stringContaining("needs role auctioneer"),
    });
    await expect(locks.release({ key: "auctioneer", owner: "x" })).rejects.toMatchObject(denied);
    await expect(
      locks.lock({ key: "auctioneer", owner: "x", value: "1.2.3.4:1", ttlMs: 10_000n }),
    ).rejects.toMatchObject(denied);
    await expect(rep.state({})).rejects.toMatchObject({
      ...denied,
      message: expect.stringContaining("needs role auctioneer or bbs"),
    });
    await expect(rep.perform({ tasks: [] })).rejects.toMatchObject(denied);
    await expect(rep.cancelTask({ taskGuid: guid })).rejects.toMatchObject(denied);
    const logs = async () => {
      for await (const line of rep.taskLogs({ taskGuid: guid })) void line;
    };
    await expect(logs()).rejects.toMatchObject(denied);
    const auctioneer = createClient(auctioneerv1.AuctioneerService, cluster.auctioneerAddress, opts);
    await expect(auctioneer.requestTaskAuctions({ tasks: [] })).rejects.toMatchObject(denied);
    auctioneer.close();
    // The client API stays open to it.
    await expect(cluster.cellService.listCells({})).resolves.toBeDefined();
  } finally {
    for (const c of [lifecycle, registry, locks, rep]) c.close();
  }
});

test("with one cell's certificate, acting as another cell is refused", async () => {
  const opts = { tls: files("cell-1"), defaultTimeoutMs: 10_000 };
  const lifecycle = createClient(TaskLifecycleService, cluster.bbsAddress, opts);
  const registry = createClient(CellRegistryService, cluster.bbsAddress, opts);
  try {
    const guid = uniqueGuid("authz-other");
    await expect(lifecycle.startTask({ taskGuid: guid, cellId: "cell-2" })).rejects.toMatchObject({
      ...denied,
      message: expect.stringContaining('cell cell-1 may act only as itself; cell_id is "cell-2"'),
    });
    await expect(lifecycle.completeTask({ taskGuid: guid, cellId: "cell-2" })).rejects.toMatchObject(denied);
    await expect(registry.heartbeat({ cell: { cellId: "cell-2" }, ttlMs: 10_000n })).rejects.toMatchObject(denied);
    await expect(registry.deregister({ cellId: "cell-2" })).rejects.toMatchObject(denied);
    // Its own id passes authorization (and reaches the handler: the task does not exist).
    await expect(lifecycle.runningTask({ taskGuid: guid, cellId: "cell-1" })).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  } finally {
    lifecycle.close();
    registry.close();
  }
});

test("a privileged task on cells without --allow-privileged fails placement with its reason", async () => {
  const guid = uniqueGuid("authz-priv");
  await cluster.tasks.desireTask({ ...fixtureTask("hello.json", guid), privileged: true });
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]);
  expect(task).toMatchObject({ failed: true, failureReason: FailureReason.noPrivilegedCell });
});

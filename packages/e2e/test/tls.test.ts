import { execFile } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { TaskService, TaskState } from "@diego/proto";
import { createClient } from "@diego/kit";
import { certFiles, Cluster, diego, fixtureTask, REPO_ROOT, uniqueGuid, waitForState } from "../src/index.js";

// The whole cluster with mutual TLS on every gRPC link; a client with the generated
// certificate works, one without a certificate or with another CA's is refused.
const run = promisify(execFile);
let cluster: Cluster;
let certs: string;
let otherCerts: string;

beforeAll(async () => {
  certs = mkdtempSync(join(tmpdir(), "diego-certs-"));
  otherCerts = mkdtempSync(join(tmpdir(), "diego-other-certs-"));
  await run(join(REPO_ROOT, "scripts/make-certs"), [certs]);
  await run(join(REPO_ROOT, "scripts/make-certs"), [otherCerts]);
  cluster = await Cluster.start({
    tls: { server: (name) => certFiles(certs, name), client: certFiles(certs, "client") },
  });
}, 180_000);

afterAll(() => cluster?.stop());

test("a task runs end to end over mutual TLS", async () => {
  const guid = uniqueGuid("tls");
  await cluster.tasks.desireTask(fixtureTask("hello.json", guid));
  const task = await waitForState(cluster.tasks, guid, [TaskState.COMPLETED]);
  expect(task).toMatchObject({ failed: false, result: "42" });
});

test("the CLI with the generated client certificate works", async () => {
  const client = certFiles(certs, "client");
  const res = await diego(["cells", "--json"], {
    DIEGO_BBS_ADDR: cluster.bbsAddress,
    DIEGO_TLS_CA_FILE: client.caFile,
    DIEGO_TLS_CERT_FILE: client.certFile,
    DIEGO_TLS_KEY_FILE: client.keyFile,
  });
  expect(res.code).toBe(0);
  expect(res.stdout).toContain("cell-1");
});

test("a client without a certificate, or with another CA's, is refused", async () => {
  const plain = await diego(["cells"], { DIEGO_BBS_ADDR: cluster.bbsAddress });
  expect(plain.code).toBe(3);
  const foreign = certFiles(otherCerts, "client");
  const other = createClient(TaskService, cluster.bbsAddress, { tls: foreign, defaultTimeoutMs: 10_000 });
  await expect(other.listTasks({})).rejects.toMatchObject({ code: "UNAVAILABLE" });
  other.close();
});

import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { ChannelCredentials, Client } from "@grpc/grpc-js";
import { readFileSync } from "node:fs";
import { DiegoClient } from "@diego/client";
import { certFiles, InProcessCluster } from "@diego/client/testing";
import { diego } from "./support/fake-io.js";

// scripts/make-certs makes a CA and certificates; the in-process cluster serving mutual TLS with them (the
// real BBS, on its memory store, and auctioneer) must accept the client certificate it made and refuse a
// client without a certificate or with one from another CA.
const run = promisify(execFile);
const makeCerts = resolve(import.meta.dirname, "../../../scripts/make-certs");

let dir: string;
let bbs: InProcessCluster;
const certs = (set: string) => certFiles(join(dir, set), "client");

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "diego-certs-"));
  await run(makeCerts, [join(dir, "ours"), "--cells", "1"]);
  await run(makeCerts, [join(dir, "theirs"), "--cells", "0"]);
  bbs = await InProcessCluster.start({
    tls: { server: (name) => certFiles(join(dir, "ours"), name), client: certs("ours") },
  });
}, 120_000);

afterAll(async () => {
  await bbs?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test("make-certs writes a CA, service certificates and a client certificate; a re-run keeps them", async () => {
  const before = readFileSync(join(dir, "ours", "ca.crt"), "utf8");
  const { stdout } = await run(makeCerts, [join(dir, "ours"), "--cells", "1"]);
  expect(stdout).not.toContain("made CA");
  expect(readFileSync(join(dir, "ours", "ca.crt"), "utf8")).toBe(before);
  for (const name of ["ca", "bbs", "auctioneer", "cell-1", "client", "etcd-ca", "etcd", "etcd-client"]) {
    expect(readFileSync(join(dir, "ours", `${name}.crt`), "utf8")).toContain("BEGIN CERTIFICATE");
    expect(readFileSync(join(dir, "ours", `${name}.key`), "utf8")).toContain("PRIVATE KEY");
  }
});

test("the client with the generated client certificate is accepted", async () => {
  const client = new DiegoClient({ address: bbs.address, tls: certs("ours"), timeoutMs: 10_000 });
  expect(await client.list()).toEqual([]);
  client.close();
});

test("the CLI with the generated client certificate is accepted, from flags or from the environment", async () => {
  const c = certs("ours");
  const flags = await diego(bbs.address, [
    "list",
    "--ca-file",
    c.caFile,
    "--cert-file",
    c.certFile,
    "--key-file",
    c.keyFile,
  ]);
  expect(flags).toMatchObject({ code: 0, stderr: "no tasks\n" });
  const env = await diego(bbs.address, ["cells", "--json"], {
    env: { DIEGO_TLS_CA_FILE: c.caFile, DIEGO_TLS_CERT_FILE: c.certFile, DIEGO_TLS_KEY_FILE: c.keyFile },
  });
  expect(env).toMatchObject({ code: 0, stdout: "" });
});

test("a client certificate from another CA is refused", async () => {
  const client = new DiegoClient({ address: bbs.address, tls: certs("theirs"), timeoutMs: 5_000 });
  await expect(client.list()).rejects.toMatchObject({ code: "UNAVAILABLE" });
  client.close();
  // The CLI trusts our CA but shows a certificate the BBS does not trust.
  const r = await diego(bbs.address, [
    "list",
    "--timeout",
    "5s",
    "--ca-file",
    certs("ours").caFile,
    "--cert-file",
    certs("theirs").certFile,
    "--key-file",
    certs("theirs").keyFile,
  ]);
  expect(r.code).toBe(3);
  expect(r.stderr).toContain(`cannot reach the BBS at ${bbs.address}`);
});

test("a client without a certificate, or without TLS, is refused", async () => {
  // TLS that trusts the right CA but offers no client certificate.
  const noCert = new Client(bbs.address, ChannelCredentials.createSsl(readFileSync(certs("ours").caFile)));
  const status = await new Promise<number>((done) =>
    noCert.makeUnaryRequest(
      "/diego.bbs.v1.TaskService/ListTasks",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      { deadline: new Date(Date.now() + 5_000) },
      (err) => done(err ? err.code : 0),
    ),
  );
  expect(status).not.toBe(0);
  noCert.close();

  const plain = await diego(bbs.address, ["list", "--timeout", "5s"]);
  expect(plain.code).toBe(3);
  expect(plain.stderr).toContain("--ca-file, --cert-file and --key-file");
});

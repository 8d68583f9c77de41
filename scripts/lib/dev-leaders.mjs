// `scripts/dev --leaders`: which etcd member, BBS and auctioneer of the running local cluster lead,
// with their pids. Reads what scripts/dev writes in its state dir: `endpoints` (one "kind name
// address" a line) and `pids/<name>`. Asks etcd itself: each member's /metrics says whether it leads;
// the BBS leader is the instance id under <prefix>/leader and the active auctioneer's address is in
// the lock record <prefix>/locks/auctioneer read through etcd's JSON gateway. An https etcd (scripts/dev
// --tls) is asked with the BBS's etcd client certificate from <state dir>/certs.
import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { join } from "node:path";

const PREFIX = "/diego";
const DEADLINE_MS = 2_000;

const dev = process.argv[2];
if (!dev) {
  console.error("usage: dev-leaders.mjs STATE_DIR");
  process.exit(2);
}

let endpoints;
try {
  endpoints = readFileSync(join(dev, "endpoints"), "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const [kind, name, address] = l.trim().split(/\s+/);
      return { kind, name, address };
    });
} catch {
  console.error(`scripts/dev --leaders: no cluster runs with state dir ${dev} (no ${join(dev, "endpoints")})`);
  process.exit(1);
}

const pidOf = (name) => {
  try {
    return readFileSync(join(dev, "pids", name), "utf8").trim();
  } catch {
    return "-";
  }
};

let etcdTls;
/** The CA and client certificate an https etcd asks for (read once). */
function etcdClientTls() {
  etcdTls ??= Object.fromEntries(
    [
      ["ca", "etcd-ca.crt"],
      ["cert", "etcd-client.crt"],
      ["key", "etcd-client.key"],
    ].map(([k, file]) => [k, readFileSync(join(dev, "certs", file))]),
  );
  return etcdTls;
}

/** One HTTP(S) request with a deadline: its status and body. */
function fetchWithDeadline(url, { method = "GET", body } = {}) {
  const https = url.startsWith("https:");
  return new Promise((resolve, reject) => {
    const req = (https ? httpsRequest : httpRequest)(
      url,
      { method, signal: AbortSignal.timeout(DEADLINE_MS), ...(https ? etcdClientTls() : {}) },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () =>
          resolve({ ok: res.statusCode >= 200 && res.statusCode < 300, status: res.statusCode, text }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

async function isEtcdLeader(url) {
  try {
    const res = await fetchWithDeadline(`${url}/metrics`);
    return /^etcd_server_is_leader 1$/m.test(res.text);
  } catch {
    return false;
  }
}

/** The value of an etcd key (a string), undefined when absent; tries each member in turn. */
async function etcdGet(key) {
  const errors = [];
  for (const e of endpoints.filter((x) => x.kind === "etcd")) {
    try {
      const res = await fetchWithDeadline(`${e.address}/v3/kv/range`, {
        method: "POST",
        body: JSON.stringify({ key: Buffer.from(key).toString("base64") }),
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const body = JSON.parse(res.text);
      const kv = body.kvs?.[0];
      return kv ? Buffer.from(kv.value ?? "", "base64").toString() : undefined;
    } catch (err) {
      errors.push(`${e.address}: ${err.message}`);
    }
  }
  throw new Error(`no etcd member answered (${errors.join("; ")})`);
}

const row = (role, name, address) =>
  console.log(
    `${role.padEnd(18)} ${(name ?? "none").padEnd(14)} pid ${(name ? pidOf(name) : "-").padEnd(8)} ${address ?? ""}`,
  );

const etcd = endpoints.filter((e) => e.kind === "etcd");
const leaders = await Promise.all(etcd.map((e) => isEtcdLeader(e.address)));
const etcdLeader = etcd.find((_, i) => leaders[i]);
row("etcd leader", etcdLeader?.name, etcdLeader?.address);

let failed = false;
try {
  // A BBS's instance id is <hostname>-<pid> (its default); the pid says which service it is.
  const id = await etcdGet(`${PREFIX}/leader`);
  const pid = id?.match(/-(\d+)$/)?.[1];
  const bbs = endpoints.find((e) => e.kind === "bbs" && pidOf(e.name) === pid);
  if (id === undefined) row("BBS leader", undefined, "(none yet)");
  else if (bbs) row("BBS leader", bbs.name, bbs.address);
  else console.log(`${"BBS leader".padEnd(18)} ${id} (no longer runs; another BBS leads once its lease expires)`);
} catch (err) {
  console.error(`BBS leader: ${err.message}`);
  failed = true;
}
try {
  const record = await etcdGet(`${PREFIX}/locks/auctioneer`);
  const address = record ? JSON.parse(record).value : undefined;
  const auctioneer = endpoints.find((e) => e.kind === "auctioneer" && e.address === address);
  row("auctioneer (lock)", auctioneer?.name ?? address, address);
} catch (err) {
  console.error(`auctioneer lock: ${err.message}`);
  failed = true;
}
process.exit(failed ? 1 : 0);

import { createServer, type Server, type Socket } from "node:net";
import { DiegoClient } from "../src/diego-client.js";
import { freePort, InProcessCluster } from "../src/testing/index.js";

// Several BBS addresses: a call goes to the one that answers, past a BBS that is down or hung. (A free
// port is an address where nothing listens: the kernel handed it out, then it was released.)
let bbs: InProcessCluster;
let hung: Server;
let hungAddress: string;
const sockets: Socket[] = [];

beforeAll(async () => {
  bbs = await InProcessCluster.start({ auctioneer: false });
  // A server that accepts connections and never answers, as a stopped (SIGSTOP) BBS does.
  hung = createServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => hung.listen(0, "127.0.0.1", resolve));
  const addr = hung.address();
  hungAddress = `127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});

afterAll(async () => {
  sockets.forEach((s) => s.destroy());
  hung.close();
  await bbs.stop();
});

test("a BBS that is down is passed over, and the one that answered is tried first afterwards", async () => {
  const down = `127.0.0.1:${await freePort()}`;
  const client = new DiegoClient({ address: `${down},${bbs.address}`, timeoutMs: 5_000 });
  try {
    await expect(client.listCells()).resolves.toEqual(expect.any(Array));
    await expect(client.get("no-such-task")).rejects.toMatchObject({ code: "NOT_FOUND" });
  } finally {
    client.close();
  }
});

test("a BBS that does not answer within the deadline is passed over", async () => {
  const client = new DiegoClient({ address: `${hungAddress},${bbs.address}`, timeoutMs: 1_000 });
  try {
    await expect(client.listCells()).resolves.toEqual(expect.any(Array));
  } finally {
    client.close();
  }
});

test("when no BBS answers, the error is UNAVAILABLE and names every address", async () => {
  const a = `127.0.0.1:${await freePort()}`;
  const b = `127.0.0.1:${await freePort()}`;
  const client = new DiegoClient({ address: `${a},${b}`, timeoutMs: 2_000 });
  try {
    const err = (await client.listCells().catch((e: unknown) => e)) as Error & { code: string };
    expect(err.code).toBe("UNAVAILABLE");
    expect(err.message).toContain(a);
    expect(err.message).toContain(b);
  } finally {
    client.close();
  }
});

test("a watch opens on the BBS that answers", async () => {
  const down = `127.0.0.1:${await freePort()}`;
  const client = new DiegoClient({ address: `${down},${bbs.address}`, timeoutMs: 5_000 });
  const abort = new AbortController();
  try {
    const guid = `failover-watch-${process.pid}-${Date.now()}`;
    const events = client.watch({ domain: "failover" }, { signal: abort.signal })[Symbol.asyncIterator]();
    const first = events.next();
    // The watch is open once the BBS has it; desire until the event arrives.
    const desire = setInterval(() => {
      void client
        .desire({
          taskGuid: guid,
          domain: "failover",
          rootFs: "docker:///diego/busybox",
          action: { action: { case: "run", value: { path: "/bin/true" } } },
        })
        .catch(() => undefined);
    }, 200);
    try {
      expect((await first).done).toBe(false);
    } finally {
      clearInterval(desire);
    }
  } finally {
    abort.abort();
    client.close();
  }
});

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { diego, eventually, REPO_ROOT, uniqueGuid } from "../src/index.js";

// scripts/dev as a user runs it, on a state dir, ports and cell ids of its own (so that it clashes
// neither with a user's cluster nor with other tests): it starts again what dies, with --ha the
// cluster outlives its etcd leader and its leading BBS, and with --tls etcd admits only clients with a
// certificate of its own CA.
const run = promisify(execFile);

/** The ports scripts/dev uses with DIEGO_DEV_PORT_OFFSET=0 (--ha, up to `cells` cells). */
function devPorts(cells: number): number[] {
  const ports = [2479, 2480, 2481, 2482, 2483, 2484, 8889, 8890, 8891, 8892, 8895, 8896, 9016, 9017, 9018, 9019];
  for (let n = 0; n < cells; n++) ports.push(1800 + n, 1900 + n);
  return ports;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/** An offset below the ephemeral range at which every port of the cluster is free. */
async function freeOffset(cells: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const offset = 10_000 + 100 * Math.floor(Math.random() * 130);
    const free = await Promise.all(devPorts(cells).map((p) => portFree(p + offset)));
    if (free.every(Boolean)) return offset;
  }
  throw new Error("no port offset with every port free");
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function ready(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}

/** A running `scripts/dev` with its own DIEGO_DEV_DIR, port offset and cell ids. */
class DevCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "diego-dev-"));
  readonly env: NodeJS.ProcessEnv;
  private output = "";
  private child?: ChildProcess;
  private exited?: Promise<number | null>;
  /** Every pid the cluster's services had, to check that stopping it leaves none. */
  readonly seenPids = new Set<number>();

  constructor(
    readonly args: string[],
    readonly offset: number,
  ) {
    this.env = {
      ...process.env,
      NODE_OPTIONS: "",
      DIEGO_DEV_DIR: this.dir,
      DIEGO_DEV_PORT_OFFSET: String(offset),
      DIEGO_DEV_CELL_PREFIX: `${uniqueGuid("dev")}-`,
    };
  }

  static async start(args: string[], cells: number): Promise<DevCluster> {
    const cluster = new DevCluster([...args, "--cells", String(cells)], await freeOffset(cells));
    await cluster.run();
    return cluster;
  }

  port(base: number): number {
    return base + this.offset;
  }

  get log(): string {
    return this.output;
  }

  private async run(): Promise<void> {
    const child = spawn(join(REPO_ROOT, "scripts/dev"), this.args, {
      env: this.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child = child;
    this.exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
    child.stdout!.on("data", (b: Buffer) => (this.output += b.toString()));
    child.stderr!.on("data", (b: Buffer) => (this.output += b.toString()));
    await eventually(
      "scripts/dev to print its banner",
      () => {
        if (child.exitCode !== null) throw new Error(`scripts/dev exited ${child.exitCode}:\n${this.output}`);
        return this.output.includes("diego local cluster is up");
      },
      120_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${this.output}`);
    });
    this.pids();
  }

  /** The current pid of each service (from DIEGO_DEV_DIR/pids/<name>). */
  pids(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of readdirSync(join(this.dir, "pids"))) {
      const pid = Number(readFileSync(join(this.dir, "pids", name), "utf8").trim());
      if (pid > 0) {
        out[name] = pid;
        this.seenPids.add(pid);
      }
    }
    return out;
  }

  /** `scripts/dev --leaders`: each role's leader → its name and pid. */
  async leaders(): Promise<Record<string, { name: string; pid: number }>> {
    const { stdout } = await run(join(REPO_ROOT, "scripts/dev"), ["--leaders"], { env: this.env, timeout: 30_000 });
    const out: Record<string, { name: string; pid: number }> = {};
    for (const m of stdout.matchAll(/^(etcd leader|BBS leader|auctioneer \(lock\))\s+(\S+)\s+pid (\d+)/gm))
      out[m[1]!] = { name: m[2]!, pid: Number(m[3]) };
    return out;
  }

  /** Kills a service with SIGKILL and waits until the supervisor has started it again (a new pid). */
  async killAndAwaitRestart(name: string): Promise<number> {
    const old = this.pids()[name]!;
    expect(old).toBeGreaterThan(0);
    process.kill(old, "SIGKILL");
    return eventually(`${name} to be started again`, () => {
      const pid = this.pids()[name];
      return pid !== undefined && pid !== old && alive(pid) ? pid : undefined;
    });
  }

  /** SIGTERM, as Ctrl-C's sibling; returns scripts/dev's exit code. */
  async stop(): Promise<number | null> {
    if (!this.child || this.child.exitCode !== null) return this.child?.exitCode ?? null;
    this.pids();
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.kill(), 100_000);
    const code = await this.exited!;
    clearTimeout(timer);
    return code;
  }

  /** Last resort after a failure: SIGKILL scripts/dev and every service pid it recorded. */
  kill(): void {
    this.child?.kill("SIGKILL");
    for (const pid of this.seenPids) if (alive(pid)) process.kill(pid, "SIGKILL");
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** GET url over TLS trusting `ca`, showing `cert`/`key` when given: the status, or the error's message. */
function httpsGet(url: string, tls: { ca: Buffer; cert?: Buffer; key?: Buffer }): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(url, { ...tls, signal: AbortSignal.timeout(10_000) }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
      res.on("error", (err) => resolve(err.message));
    });
    req.on("error", (err) => resolve(err.message));
    req.end();
  });
}

/** A copy of the hello fixture with a guid of its own. */
function taskFile(dir: string): string {
  const guid = uniqueGuid("dev");
  const json = {
    ...JSON.parse(readFileSync(join(REPO_ROOT, "packages/e2e/fixtures/hello.json"), "utf8")),
    task_guid: guid,
    log_guid: guid,
  };
  const file = join(dir, `${guid}.json`);
  writeFileSync(file, JSON.stringify(json));
  return file;
}

/** The pid of the Docker engine, once it answers. */
async function dockerEngine(): Promise<string> {
  await run("docker", ["info", "--format", "{{.ID}}"], { timeout: 30_000 });
  const { stdout } = await run("pgrep", ["-o", "-x", "dockerd"]);
  return stdout.trim();
}

describe("restart_delay (scripts/lib/supervise.sh): the backoff before a service is started again", () => {
  test.each([
    { previous: 0, uptime: 0, next: 1000, why: "first exit" },
    { previous: 1000, uptime: 2, next: 2000, why: "doubles" },
    { previous: 8000, uptime: 59, next: 16000, why: "doubles while it keeps failing" },
    { previous: 16000, uptime: 1, next: 30000, why: "capped" },
    { previous: 30000, uptime: 1, next: 30000, why: "stays at the cap" },
    { previous: 30000, uptime: 60, next: 1000, why: "reset after a minute up" },
  ])("$why: after $previous ms and $uptime s up → $next ms", async ({ previous, uptime, next }) => {
    const { stdout } = await run(
      "bash",
      ["-c", `source scripts/lib/env.sh; source scripts/lib/supervise.sh; restart_delay ${previous} ${uptime}`],
      { cwd: REPO_ROOT },
    );
    expect(Number(stdout.trim())).toBe(next);
  });
});

describe("scripts/dev supervision", () => {
  let cluster: DevCluster | undefined;
  let engine: string;

  beforeAll(async () => {
    engine = await dockerEngine();
  });

  afterEach(async () => {
    if (!cluster) return;
    const failed = (await cluster.stop()) !== 0;
    if (failed) {
      cluster.kill();
      console.log(cluster.log);
    } else cluster.remove();
    cluster = undefined;
  }, 120_000);

  test("a cell killed with SIGKILL is reported and started again, and SIGTERM stops all of it but the Docker engine", async () => {
    cluster = await DevCluster.start([], 1);
    const cellReady = `http://127.0.0.1:${cluster.port(1900)}/readyz`;
    expect(await ready(cellReady)).toBe(true);

    const pid = await cluster.killAndAwaitRestart("cell-1");
    await eventually("cell-1 to be ready again", () => ready(cellReady));
    expect(cluster.log).toMatch(/cell-1 \(pid \d+\) exited after \d+ s \(killed by SIGKILL\); last lines of/);
    expect(cluster.log).toContain(`cell-1 started again (pid ${pid}`);

    expect(await cluster.stop()).toBe(0);
    for (const p of cluster.seenPids) expect(alive(p)).toBe(false);
    expect(readdirSync(join(cluster.dir, "pids"))).toEqual([]);
    // The engine ran before scripts/dev started: it is the same engine and still answers.
    expect(await dockerEngine()).toBe(engine);
  }, 180_000);

  test("--ha: with its etcd leader and its leading BBS killed, the CLI (both BBS addresses) still runs a task to completion", async () => {
    cluster = await DevCluster.start(["--ha"], 1);
    const cli = { ...cluster.env, DIEGO_BBS_ADDR: `127.0.0.1:${cluster.port(8889)},127.0.0.1:${cluster.port(8891)}` };
    const names = Object.keys(cluster.pids()).sort();
    expect(names).toEqual(["auctioneer-1", "auctioneer-2", "bbs-1", "bbs-2", "cell-1", "etcd-1", "etcd-2", "etcd-3"]);

    const leaders = await eventually("a BBS leader", async () => {
      const l = await cluster!.leaders();
      return l["etcd leader"] && l["BBS leader"] ? l : undefined;
    });
    const etcdLeader = leaders["etcd leader"]!;
    const bbsLeader = leaders["BBS leader"]!;
    expect(etcdLeader.name).toMatch(/^etcd-[123]$/);
    expect(bbsLeader.name).toMatch(/^bbs-[12]$/);
    process.kill(etcdLeader.pid, "SIGKILL");
    process.kill(bbsLeader.pid, "SIGKILL");

    const result = await diego(["run", taskFile(cluster.dir), "--wait"], cli);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("42");
    const got = await diego(["cells"], cli);
    expect(got.code).toBe(0);
    expect(got.stdout).toContain(`${cluster.env.DIEGO_DEV_CELL_PREFIX}cell-1`);

    // Both come back: the etcd member rejoins and a living BBS leads.
    await eventually("the killed services to be started again", () => {
      const p = cluster!.pids();
      const back = (name: string, old: number) => p[name] !== undefined && p[name] !== old && alive(p[name]);
      return back(etcdLeader.name, etcdLeader.pid) && back(bbsLeader.name, bbsLeader.pid);
    });
    expect(cluster.log).toContain(`${etcdLeader.name} (pid ${etcdLeader.pid}) exited`);
    expect(cluster.log).toContain(`${bbsLeader.name} (pid ${bbsLeader.pid}) exited`);
    // A living BBS leads once the dead leader's lease has run out.
    await eventually("a living BBS to lead", async () => {
      const l = (await cluster!.leaders())["BBS leader"];
      return l !== undefined && l.pid !== bbsLeader.pid && alive(l.pid);
    });
    await eventually("the etcd member to be healthy again", () =>
      ready(`http://127.0.0.1:${cluster!.port(2477 + 2 * Number(etcdLeader.name.slice(-1)))}/health`),
    );
    expect(await cluster.stop()).toBe(0);
    for (const p of cluster.seenPids) expect(alive(p)).toBe(false);
    expect(await dockerEngine()).toBe(engine);
  }, 180_000);

  test("--tls: etcd refuses a client without a certificate of its own CA, and the cluster still runs a task", async () => {
    cluster = await DevCluster.start(["--tls"], 1);
    const certs = join(cluster.dir, "certs");
    const file = (name: string) => readFileSync(join(certs, name));
    const health = `https://127.0.0.1:${cluster.port(2479)}/health`;
    const ca = file("etcd-ca.crt");

    // Only the BBS's etcd client certificate opens etcd: none, or one of the diego CA, is refused.
    expect(await httpsGet(health, { ca, cert: file("etcd-client.crt"), key: file("etcd-client.key") })).toBe(200);
    expect(await httpsGet(health, { ca })).toEqual(expect.any(String));
    expect(await httpsGet(health, { ca, cert: file("client.crt"), key: file("client.key") })).toEqual(
      expect.any(String),
    );
    // Nor does etcd answer plaintext.
    expect(await ready(`http://127.0.0.1:${cluster.port(2479)}/health`)).toBe(false);

    // --leaders asks etcd with the client certificate.
    const leaders = await eventually("a BBS leader", async () => {
      const l = await cluster!.leaders();
      return l["etcd leader"] && l["BBS leader"] ? l : undefined;
    });
    expect(leaders["etcd leader"]!.name).toBe("etcd");

    const cli = {
      ...cluster.env,
      DIEGO_BBS_ADDR: `127.0.0.1:${cluster.port(8889)}`,
      DIEGO_TLS_CA_FILE: join(certs, "ca.crt"),
      DIEGO_TLS_CERT_FILE: join(certs, "client.crt"),
      DIEGO_TLS_KEY_FILE: join(certs, "client.key"),
    };
    const result = await diego(["run", taskFile(cluster.dir), "--wait"], cli);
    expect(result).toMatchObject({ code: 0 });
    expect(result.stdout).toContain("42");
    expect(await cluster.stop()).toBe(0);
    for (const p of cluster.seenPids) expect(alive(p)).toBe(false);
  }, 180_000);
});

import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { promisify } from "node:util";
import { CellService, TaskService } from "@diego/proto";
import { createClient, type ServiceClient } from "@diego/kit";
import { eventually, freePort } from "@diego/testing";
import { REPO_ROOT } from "./processes.js";

const run = promisify(execFile);

/** Builds the project's images (scripts/build-image; the base file systems are kept between runs). */
export async function buildImages(tag: string): Promise<void> {
  await run(`${REPO_ROOT}/scripts/build-image`, ["--tag", tag], { cwd: REPO_ROOT, maxBuffer: 64 << 20 });
}

/**
 * etcd, the BBS, the auctioneer and one cell, each a container of the project's image on the local
 * Docker engine, configured by environment only, as the manifests run them. They share the host's
 * network (free loopback ports), so the test reaches their status ports like a kubelet's probes.
 * The BBS, the auctioneer and etcd run as the image's unprivileged user on a read-only root file
 * system; the cell runs as root with the engine's socket, as the DaemonSet does.
 */
export class ImageCluster {
  readonly tasks: ServiceClient<(typeof TaskService)["method"]>;
  readonly cells: ServiceClient<(typeof CellService)["method"]>;
  readonly containers: string[] = [];

  private constructor(
    readonly image: string,
    readonly name: string,
    readonly ports: Record<
      "etcd" | "peer" | "bbs" | "bbsStatus" | "auctioneer" | "auctioneerStatus" | "cell" | "cellStatus",
      number
    >,
    readonly cellId: string,
    readonly workDir: string,
  ) {
    const bbs = `127.0.0.1:${ports.bbs}`;
    this.tasks = createClient(TaskService, bbs, { defaultTimeoutMs: 30_000 });
    this.cells = createClient(CellService, bbs, { defaultTimeoutMs: 30_000 });
  }

  static async start(image: string): Promise<ImageCluster> {
    const id = randomBytes(3).toString("hex");
    const names = ["etcd", "peer", "bbs", "bbsStatus", "auctioneer", "auctioneerStatus", "cell", "cellStatus"] as const;
    const ports = {} as ImageCluster["ports"];
    for (const n of names) ports[n] = await freePort();
    const workDir = `/var/lib/diego-e2e-image-${id}`;
    mkdirSync(workDir, { recursive: true });
    const cluster = new ImageCluster(image, `diego-e2e-image-${id}`, ports, `image-cell-${id}`, workDir);
    try {
      await cluster.boot();
    } catch (err) {
      const logs = await cluster.logs();
      await cluster.stop();
      throw new Error(`${(err as Error).message}\n${logs}`);
    }
    return cluster;
  }

  private async container(role: string, args: string[], command: string[]): Promise<void> {
    const name = `${this.name}-${role}`;
    await run("docker", [
      "run",
      "--detach",
      "--name",
      name,
      "--network",
      "host",
      "--label",
      `diego-e2e=${this.name}`,
      ...args,
      this.image,
      ...command,
    ]);
    this.containers.push(name);
  }

  private async ready(what: string, port: number): Promise<void> {
    await eventually(
      `${what} to answer /readyz`,
      async () => {
        const state = (
          await run("docker", ["inspect", "--format", "{{.State.Status}}", `${this.name}-${what}`])
        ).stdout.trim();
        if (state !== "running") throw new Error(`${what} container is ${state}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`)).ok;
      },
      120_000,
      500,
    );
    const healthy = await fetch(`http://127.0.0.1:${port}/healthz`);
    if (!healthy.ok) throw new Error(`${what} /healthz answered ${healthy.status}`);
  }

  private async boot(): Promise<void> {
    const p = this.ports;
    const locked = ["--read-only", "--tmpfs", "/tmp:rw,mode=1777"];
    await this.container("etcd", locked, [
      "etcd",
      "--name=e2e",
      "--data-dir=/tmp/etcd",
      `--listen-client-urls=http://127.0.0.1:${p.etcd}`,
      `--advertise-client-urls=http://127.0.0.1:${p.etcd}`,
      `--listen-peer-urls=http://127.0.0.1:${p.peer}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${p.peer}`,
      `--initial-cluster=e2e=http://127.0.0.1:${p.peer}`,
    ]);
    const env = (pairs: Record<string, string>) => Object.entries(pairs).flatMap(([k, v]) => ["--env", `${k}=${v}`]);
    await this.container(
      "bbs",
      [
        ...locked,
        ...env({
          DIEGO_BBS_LISTEN_ADDRESS: `127.0.0.1:${p.bbs}`,
          DIEGO_BBS_STATUS_ADDRESS: `127.0.0.1:${p.bbsStatus}`,
          DIEGO_BBS_ETCD_ENDPOINTS: `http://127.0.0.1:${p.etcd}`,
        }),
      ],
      ["bbs"],
    );
    await this.ready("bbs", p.bbsStatus);
    await this.container(
      "auctioneer",
      [
        ...locked,
        ...env({
          DIEGO_AUCTIONEER_LISTEN_ADDRESS: `127.0.0.1:${p.auctioneer}`,
          DIEGO_AUCTIONEER_STATUS_ADDRESS: `127.0.0.1:${p.auctioneerStatus}`,
          DIEGO_AUCTIONEER_BBS_ADDRESS: `127.0.0.1:${p.bbs}`,
        }),
      ],
      ["auctioneer"],
    );
    await this.ready("auctioneer", p.auctioneerStatus);
    await this.container(
      "cell",
      [
        ...locked,
        "--user",
        "0:0",
        "--pid",
        "host",
        "--volume",
        "/var/run/docker.sock:/var/run/docker.sock",
        "--volume",
        `${this.workDir}:${this.workDir}`,
        ...env({
          DIEGO_CELL_CELL_ID: this.cellId,
          DIEGO_CELL_LISTEN_ADDRESS: `127.0.0.1:${p.cell}`,
          DIEGO_CELL_STATUS_ADDRESS: `127.0.0.1:${p.cellStatus}`,
          DIEGO_CELL_BBS_ADDRESS: `127.0.0.1:${p.bbs}`,
          DIEGO_CELL_WORK_DIR: this.workDir,
          DIEGO_CELL_MEMORY_MB: "1024",
          DIEGO_CELL_DISK_MB: "2048",
        }),
      ],
      ["cell"],
    );
    await this.ready("cell", p.cellStatus);
  }

  async logs(): Promise<string> {
    const out: string[] = [];
    for (const c of this.containers) {
      const { stdout, stderr } = await run("docker", ["logs", "--tail", "40", c]).catch(() => ({
        stdout: "",
        stderr: "",
      }));
      out.push(`----- ${c} -----\n${stdout}${stderr}`);
    }
    return out.join("\n");
  }

  async stop(): Promise<void> {
    for (const c of [...this.containers].reverse()) {
      await run("docker", ["stop", "--time", "20", c]).catch(() => undefined);
      await run("docker", ["rm", "--force", c]).catch(() => undefined);
    }
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

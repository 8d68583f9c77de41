import { readFileSync } from "node:fs";
import { mkdir, readFile, readdir, rename, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { DiegoError } from "@diego/models";
import Docker from "dockerode";
import { firstFile } from "../actions/container-files.js";
import {
  HELPER_BUSYBOX,
  type ContainerInfo,
  type ContainerRuntime,
  type ContainerSpec,
  type ContainerStatus,
  type ExecIo,
  type ExecResult,
  type ExecSpec,
  type ProcessHandle,
  type RegistryAuth,
  type RuntimeEvent,
} from "./container-runtime.js";

/** Where the helper directory (a static busybox) is mounted in every container. */
export const HELPER_MOUNT = "/.diego";
const HELPER = HELPER_BUSYBOX;

/** The capabilities an unprivileged task keeps (Docker's default set less MKNOD, NET_RAW, SYS_CHROOT, AUDIT_WRITE, SETFCAP, SETPCAP). */
export const TASK_CAPABILITIES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "NET_BIND_SERVICE",
];

export interface DockerRuntimeOptions {
  /** Unix socket of the engine; default /var/run/docker.sock. */
  socketPath?: string;
  /** Host directory holding a static `busybox`, mounted read-only at /.diego in every container. */
  helperDir: string;
}

/**
 * ContainerRuntime on the Docker engine through dockerode. Each container's main process is an idle
 * `sleep` under Docker's init; every process of a task is an exec, so actions can run side by side in
 * one container. Signals reach an exec's processes through the host's /proc (the cell runs in the
 * host's pid namespace, as root).
 */
export class DockerRuntime implements ContainerRuntime {
  readonly docker: Docker;

  constructor(private readonly options: DockerRuntimeOptions) {
    this.docker = new Docker({ socketPath: options.socketPath ?? "/var/run/docker.sock" });
  }

  async hasImage(image: string): Promise<boolean> {
    try {
      await this.docker.getImage(image).inspect();
      return true;
    } catch (err) {
      if (statusCode(err) === 404) return false;
      throw err;
    }
  }

  async pullImage(image: string, auth?: RegistryAuth): Promise<void> {
    const opts = auth ? { authconfig: { username: auth.username, password: auth.password } } : {};
    const stream = (await this.docker.pull(image, opts)) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(stream, (err: Error | null, output: Array<{ error?: string }>) => {
        const failed = output?.find((o) => o.error);
        if (err) reject(err);
        else if (failed) reject(new Error(failed.error));
        else resolve();
      });
    });
  }

  async create(spec: ContainerSpec): Promise<string> {
    const memory = spec.memoryMb * 1024 * 1024;
    const container = await this.docker
      .createContainer({
        name: spec.name,
        Image: spec.image,
        Labels: spec.labels,
        Env: spec.env,
        Entrypoint: [HELPER],
        Cmd: ["sleep", "2147483647"],
        WorkingDir: "/",
        HostConfig: {
          Init: true,
          Binds: [`${this.options.helperDir}:${HELPER_MOUNT}:ro`],
          Memory: memory || undefined,
          MemorySwap: memory || undefined,
          CpuShares: spec.cpuShares || undefined,
          PidsLimit: spec.maxPids || undefined,
          ...(spec.privileged
            ? privilegedConfig()
            : { SecurityOpt: ["no-new-privileges"], CapDrop: ["ALL"], CapAdd: TASK_CAPABILITIES }),
          NetworkMode: spec.network ? "bridge" : "none",
          StorageOpt: spec.diskMb > 0 ? { size: `${spec.diskMb}M` } : undefined,
        },
      })
      .catch((err: unknown) => {
        const code = statusCode(err);
        const message = engineMessage(err);
        if (code === 409) throw new DiegoError("ALREADY_EXISTS", message);
        if (code === 404) throw new DiegoError("NOT_FOUND", message);
        throw new Error(message);
      });
    return container.id;
  }

  async start(id: string): Promise<void> {
    await this.docker.getContainer(id).start();
  }

  async exec(id: string, spec: ExecSpec, io: ExecIo): Promise<ProcessHandle> {
    const argv =
      spec.nofile > 0
        ? [HELPER, "sh", "-c", 'ulimit -n "$0" && exec "$@"', String(spec.nofile), ...spec.argv]
        : spec.argv;
    const container = this.docker.getContainer(id);
    const exec = await container.exec({
      Cmd: argv,
      Env: spec.env,
      User: spec.user || undefined,
      WorkingDir: spec.dir || undefined,
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: false,
      Tty: false,
    });
    const oomBefore = await oomKillCount(id);
    const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
    const out = new PassThrough();
    const err = new PassThrough();
    out.on("data", (c: Buffer) => io.stdout(c));
    err.on("data", (c: Buffer) => io.stderr(c));
    this.docker.modem.demuxStream(stream, out, err);
    const ended = new Promise<void>((resolve) => {
      stream.once("end", resolve);
      stream.once("close", resolve);
      stream.once("error", () => resolve());
    });
    const exited = (async (): Promise<ExecResult> => {
      await ended;
      let info = await exec.inspect();
      for (let i = 0; info.Running && i < 200; i++) {
        await sleep(25);
        info = await exec.inspect();
      }
      const exitCode = info.ExitCode ?? -1;
      let outOfMemory = false;
      if (exitCode === 137) {
        const after = await oomKillCount(id);
        outOfMemory = after !== undefined && oomBefore !== undefined ? after > oomBefore : await this.oomKilled(id);
      }
      return { exitCode, outOfMemory };
    })();
    exited.catch(() => undefined);
    return {
      exited,
      signal: async (sig) => {
        const info = await exec.inspect().catch(() => undefined);
        if (!info?.Running || !info.Pid) return;
        for (const pid of await processTree(info.Pid)) {
          try {
            process.kill(pid, sig);
          } catch {
            // already gone
          }
        }
      },
    };
  }

  private async oomKilled(id: string): Promise<boolean> {
    for (let i = 0; i < 10; i++) {
      const info = await this.docker
        .getContainer(id)
        .inspect()
        .catch(() => undefined);
      if (info?.State?.OOMKilled) return true;
      await sleep(20);
    }
    return false;
  }

  async putArchive(id: string, dir: string, tar: Buffer | NodeJS.ReadableStream): Promise<void> {
    try {
      await this.docker.getContainer(id).putArchive(tar as never, { path: dir });
    } catch (err) {
      if (statusCode(err) === 404) throw new DiegoError("NOT_FOUND", `${dir} does not exist in the container`);
      throw err;
    }
  }

  async getArchive(id: string, path: string): Promise<NodeJS.ReadableStream> {
    try {
      return (await this.docker.getContainer(id).getArchive({ path })) as NodeJS.ReadableStream;
    } catch (err) {
      if (statusCode(err) === 404) throw new DiegoError("NOT_FOUND", `${path} does not exist in the container`);
      throw err;
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      const code = statusCode(err);
      if (code === 404) return;
      if (code === 409 && /already in progress/.test(String((err as Error).message))) return;
      throw err;
    }
  }

  async list(labels: Record<string, string>): Promise<ContainerInfo[]> {
    const found = await this.docker.listContainers({ all: true, filters: { label: labelFilters(labels) } });
    return found.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? "").replace(/^\//, ""),
      labels: c.Labels ?? {},
      status: toStatus(c.State),
    }));
  }

  watch(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void, onError: (err: Error) => void): () => void {
    let stream: (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    let stopped = false;
    this.docker
      .getEvents({ filters: { type: ["container"], label: labelFilters(labels) } })
      .then((s) => {
        stream = s as typeof stream;
        if (stopped) return stream?.destroy?.();
        let buffered = "";
        s.on("data", (chunk: Buffer) => {
          buffered += chunk.toString("utf8");
          let nl: number;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line) continue;
            try {
              const e = JSON.parse(line) as {
                Action: string;
                id: string;
                Actor?: { Attributes?: Record<string, string> };
              };
              const action = e.Action.split(":")[0];
              if (!["create", "start", "die", "destroy", "oom"].includes(action)) continue;
              const attributes = e.Actor?.Attributes ?? {};
              onEvent({
                containerId: e.id,
                name: attributes.name ?? "",
                labels: attributes,
                action: action as RuntimeEvent["action"],
              });
            } catch {
              // not an event line
            }
          }
        });
        s.on("error", (err: Error) => !stopped && onError(err));
        s.on("end", () => !stopped && onError(new Error("docker event stream ended")));
      })
      .catch((err: Error) => !stopped && onError(err));
    return () => {
      stopped = true;
      stream?.destroy?.();
    };
  }

  /**
   * Puts a static busybox into the helper directory, copied out of `image` (its /bin/busybox), unless
   * one is there already.
   */
  async prepareHelper(image: string): Promise<void> {
    const target = join(this.options.helperDir, "busybox");
    if (
      await stat(target).then(
        (s) => s.size > 0,
        () => false,
      )
    )
      return;
    await mkdir(this.options.helperDir, { recursive: true });
    if (!(await this.hasImage(image))) await this.pullImage(image);
    const c = await this.docker.createContainer({
      Image: image,
      Entrypoint: ["/bin/busybox"],
      Cmd: ["true"],
      Labels: { "diego.helper": "1" },
    });
    try {
      const file = await firstFile((await c.getArchive({ path: "/bin/busybox" })) as NodeJS.ReadableStream);
      if (!file || file.data.length === 0) throw new Error(`${image} has no /bin/busybox`);
      const tmp = `${target}.${process.pid}`;
      await writeFile(tmp, file.data, { mode: 0o755 });
      await rename(tmp, target);
    } finally {
      await c.remove({ force: true }).catch(() => undefined);
    }
  }

  /**
   * Whether disk_mb can be enforced: a container with a 16M size quota (the driver must accept it)
   * writes 40M (the write must fail). btrfs with inconsistent qgroups accepts quotas it does not
   * enforce; this catches that too.
   */
  async probeDiskQuota(image: string): Promise<{ enforced: boolean; reason: string }> {
    const { driver } = await this.engineInfo();
    let c: Docker.Container;
    try {
      c = await this.docker.createContainer({
        Image: image,
        Entrypoint: ["/bin/busybox"],
        Cmd: ["sh", "-c", "dd if=/dev/zero of=/tmp/diego-quota-probe bs=1M count=40 2>/dev/null"],
        Labels: { "diego.helper": "1" },
        HostConfig: { StorageOpt: { size: "16M" }, NetworkMode: "none" },
      });
    } catch (err) {
      return { enforced: false, reason: `storage driver ${driver} refuses a size quota: ${engineMessage(err)}` };
    }
    try {
      await c.start();
      const { StatusCode } = (await c.wait()) as { StatusCode: number };
      return StatusCode !== 0
        ? { enforced: true, reason: `storage driver ${driver} enforces size quotas` }
        : {
            enforced: false,
            reason: `storage driver ${driver} accepts a size quota but does not enforce it (a 40M write passed a 16M quota; on btrfs run \`btrfs quota rescan -w <data root>\`)`,
          };
    } catch (err) {
      return { enforced: false, reason: `quota probe failed: ${engineMessage(err)}` };
    } finally {
      await c.remove({ force: true }).catch(() => undefined);
    }
  }

  /** The engine's storage driver and data root, for the disk quota probe and capacity. */
  async engineInfo(): Promise<{ driver: string; dataRoot: string }> {
    const info = (await this.docker.info()) as { Driver: string; DockerRootDir: string };
    return { driver: info.Driver, dataRoot: info.DockerRootDir };
  }
}

const CAPABILITY_NAMES = [
  "CHOWN",
  "DAC_OVERRIDE",
  "DAC_READ_SEARCH",
  "FOWNER",
  "FSETID",
  "KILL",
  "SETGID",
  "SETUID",
  "SETPCAP",
  "LINUX_IMMUTABLE",
  "NET_BIND_SERVICE",
  "NET_BROADCAST",
  "NET_ADMIN",
  "NET_RAW",
  "IPC_LOCK",
  "IPC_OWNER",
  "SYS_MODULE",
  "SYS_RAWIO",
  "SYS_CHROOT",
  "SYS_PTRACE",
  "SYS_PACCT",
  "SYS_ADMIN",
  "SYS_BOOT",
  "SYS_NICE",
  "SYS_RESOURCE",
  "SYS_TIME",
  "SYS_TTY_CONFIG",
  "MKNOD",
  "LEASE",
  "AUDIT_WRITE",
  "AUDIT_CONTROL",
  "SETFCAP",
  "MAC_OVERRIDE",
  "MAC_ADMIN",
  "SYSLOG",
  "WAKE_ALARM",
  "BLOCK_SUSPEND",
  "AUDIT_READ",
]; // PERFMON, BPF and CHECKPOINT_RESTORE are unknown to Docker 20.10's capability list

let privileged: Record<string, unknown> | undefined;

/**
 * A privileged task: Docker's --privileged when this host's capability bounding set holds every
 * capability; otherwise (a sandboxed host, where --privileged fails with "unable to apply caps") every
 * capability the host has, without seccomp or AppArmor confinement.
 */
export function privilegedConfig(): Record<string, unknown> {
  if (privileged) return privileged;
  let bounding = -1n;
  try {
    const m = /^CapBnd:\s+([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) bounding = BigInt(`0x${m[1]}`);
  } catch {
    // not Linux: assume everything
  }
  const names = CAPABILITY_NAMES.filter((_, bit) => bounding < 0n || (bounding >> BigInt(bit)) & 1n);
  privileged =
    names.length === CAPABILITY_NAMES.length
      ? { Privileged: true }
      : { Privileged: false, CapAdd: names, SecurityOpt: ["seccomp=unconfined", "apparmor=unconfined"] };
  return privileged;
}

function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

function toStatus(state: string): ContainerStatus {
  if (state === "running" || state === "restarting" || state === "paused") return "running";
  if (state === "created") return "created";
  return "exited";
}

/** The engine's own words for an error (dockerode puts them in `json.message`). */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: string } })?.json;
  return json?.message ?? (err as Error)?.message ?? String(err);
}

function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The cgroup's count of OOM kills (cgroup v1 memory.oom_control or v2 memory.events), if readable. */
async function oomKillCount(id: string): Promise<number | undefined> {
  const candidates = [
    `/sys/fs/cgroup/memory/docker/${id}/memory.oom_control`,
    `/sys/fs/cgroup/docker/${id}/memory.events`,
    `/sys/fs/cgroup/system.slice/docker-${id}.scope/memory.events`,
  ];
  for (const file of candidates) {
    try {
      const text = await readFile(file, "utf8");
      const m = /^oom_kill (\d+)$/m.exec(text);
      if (m) return Number(m[1]);
    } catch {
      // try the next layout
    }
  }
  return undefined;
}

/** pid and all its descendants, from the host's /proc. */
async function processTree(root: number): Promise<number[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir("/proc").catch(() => [] as string[])) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const visit = (pid: number) => {
    out.push(pid);
    for (const c of children.get(pid) ?? []) visit(c);
  };
  visit(root);
  return out;
}

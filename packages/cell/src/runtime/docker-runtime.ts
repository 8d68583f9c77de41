import { PassThrough } from "node:stream";
import { DiegoError } from "@diego/models";
import Docker from "dockerode";
import {
  HELPER_BUSYBOX,
  type ContainerInfo,
  type ContainerUsage,
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
import { engineMessage, statusCode } from "./docker-errors.js";
import { oomKillCount } from "./oom-kill-count.js";
import { privilegedConfig, TASK_CAPABILITIES } from "./privileged-config.js";
import { processTree } from "./process-tree.js";

/** Where the helper directory (a static busybox) is mounted in every container. */
export const HELPER_MOUNT = "/.diego";
const HELPER = HELPER_BUSYBOX;

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
    return { id: exec.id, exited, signal: (sig) => signalExec(exec, sig) };
  }

  async reattach(id: string, processId: string): Promise<ProcessHandle | undefined> {
    const exec = this.docker.getExec(processId);
    const first = await exec.inspect().catch(() => undefined);
    if (!first || !id.startsWith(first.ContainerID ?? "-")) return undefined;
    const exited = (async (): Promise<ExecResult> => {
      let info = first;
      // No stream tells when a process the cell did not start ends: ask, at most every second.
      for (let wait = 50; info.Running; wait = Math.min(1_000, wait * 2)) {
        await sleep(wait);
        const next = await exec.inspect().catch(() => undefined);
        if (!next) return { exitCode: -1, outOfMemory: false }; // the container went with it
        info = next;
      }
      const exitCode = info.ExitCode ?? -1;
      return { exitCode, outOfMemory: exitCode === 137 && (await this.oomKilled(id)) };
    })();
    exited.catch(() => undefined);
    return { id: processId, exited, signal: (sig) => signalExec(exec, sig) };
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

  async usage(_id: string): Promise<ContainerUsage | undefined> {
    return undefined; // measured in the run-step work of this round
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
}

/** Signals an exec's process and every process it started (through the host's /proc). */
async function signalExec(exec: Docker.Exec, sig: "SIGTERM" | "SIGKILL"): Promise<void> {
  const info = await exec.inspect().catch(() => undefined);
  if (!info?.Running || !info.Pid) return;
  for (const pid of await processTree(info.Pid)) {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  }
}

function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

function toStatus(state: string): ContainerStatus {
  if (state === "running" || state === "restarting" || state === "paused") return "running";
  if (state === "created") return "created";
  return "exited";
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

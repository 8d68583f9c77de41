import { open, type FileHandle } from "node:fs/promises";
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
import { cgroupUsage, usageFromStats, type EngineStats } from "./cgroup-usage.js";
import { createdEnv, layerEnv } from "./env-layers.js";
import { oomKillCount } from "./oom-kill-count.js";
import { privilegedConfig, TASK_CAPABILITIES } from "./privileged-config.js";
import { killProcessGroup } from "./process-tree.js";
import {
  heldArgv,
  mainProcessId,
  newOutputKey,
  OUTPUT_ROOT,
  outputKeyOf,
  outputPaths,
  parseMainProcessId,
  REDIRECTED_MARK,
  statusPath,
  wrappedArgv,
} from "./output-files.js";
import {
  findStarted,
  isHeldShell,
  mainProcessOf,
  procStat,
  stillRuns,
  untilEnded,
  untilHeld,
  type ProcStat,
} from "./main-process-starts.js";
import { NO_OUTPUT, type OutputOffsets } from "./output-offsets.js";
import { OutputTail, type OutputSource } from "./output-tail.js";
import { MainProcessFiles, mainScript } from "./main-process-files.js";
import { fileTail, firstFile } from "./tar-files.js";

/** Where the helper directory (a static busybox) is mounted in every container. */
export const HELPER_MOUNT = "/.diego";
const HELPER = HELPER_BUSYBOX;
/** What is read of a process's output file once it is gone before the cell could open it: its last 4 MiB. */
const OUTPUT_REST_MAX_BYTES = 4 * 1024 * 1024;
const MARK = REDIRECTED_MARK.charCodeAt(0);
/** An exec's user that is root (empty: the container's user, root where the main process can start processes). */
const ROOT_USERS = new Set(["", "root", "0"]);

export interface DockerRuntimeOptions {
  /** Unix socket of the engine; default /var/run/docker.sock. */
  socketPath?: string;
  /** Host directory holding a static `busybox`, mounted read-only at /.diego in every container. */
  helperDir: string;
}

/**
 * ContainerRuntime on the Docker engine through dockerode. Each container's main process is the helper
 * busybox's shell under Docker's init (main-process-files.ts): idle, it reads files and starts the
 * task's root processes for the cell; any other process of a task is an exec of the engine. Actions
 * can run side by side in one container. Signals reach a task's processes through the host's /proc
 * (the cell runs in the host's pid namespace, as root).
 */
export class DockerRuntime implements ContainerRuntime {
  readonly docker: Docker;
  /** Containers whose output directory is made (or being made). */
  private readonly outputRoots = new Map<string, Promise<void>>();
  /** What does not change in a container's life once it runs, from one inspect (by container id). */
  private readonly facts = new Map<string, Promise<ContainerFacts>>();
  private readonly mainFiles = new MainProcessFiles();

  constructor(private readonly options: DockerRuntimeOptions) {
    this.docker = new Docker({ socketPath: options.socketPath ?? "/var/run/docker.sock" });
  }

  async imageId(image: string): Promise<string | undefined> {
    try {
      return (await this.docker.getImage(image).inspect()).Id;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
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
        // The idle main process makes the output directory first when it can (the image's user is root),
        // which saves the exec that makes it otherwise (outputRoot), and reads files for the cell.
        Cmd: ["sh", "-c", mainScript(HELPER)],
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

  async exec(id: string, spec: ExecSpec, io: ExecIo, signal?: AbortSignal): Promise<ProcessHandle> {
    // Output goes to files the cell can read again after a restart (docs/reliability.md, "Output files").
    await this.outputRoot(id);
    // A root process is started by the container's main process where it can (docs/performance.md,
    // "Processes started by the main process"), else by the engine.
    if (ROOT_USERS.has(spec.user)) {
      const started = await this.startByMain(id, spec, io, signal);
      if (started) return started;
    }
    const key = newOutputKey();
    const argv = wrappedArgv(HELPER, spec.argv, spec.nofile, key);
    const container = this.docker.getContainer(id);
    const layered = spec.baseEnv?.length || spec.createEnv?.length;
    const env = layered
      ? layerEnv(spec.baseEnv ?? [], createdEnv(spec.createEnv ?? [], await this.containerEnv(id)), spec.env)
      : spec.env;
    const exec = await container.exec({
      Cmd: argv,
      Env: env,
      User: spec.user || undefined,
      WorkingDir: spec.dir || undefined,
      AttachStdout: true,
      AttachStderr: true,
      AttachStdin: true,
      Tty: false,
    });
    const oomBefore = await oomKillCount(id);
    if (signal?.aborted) throw new DiegoError("CANCELLED", "the process was stopped before it started");
    const stream = (await exec.start({ hijack: true, stdin: true })) as NodeJS.ReadWriteStream;
    stream.on("error", () => undefined); // the end below tells
    const ended = new Promise<void>((resolve) => {
      stream.once("end", resolve);
      stream.once("close", resolve);
      stream.once("error", () => resolve());
    });
    // The exec's own stdout carries the wrapper's mark and nothing else (output-files.ts); its stderr, the
    // wrapper's own errors.
    let redirected!: () => void;
    const marked = new Promise<void>((resolve) => (redirected = resolve));
    const out = new PassThrough();
    const err = new PassThrough();
    let unmarked = true;
    out.on("data", (c: Buffer) => {
      if (unmarked && c[0] === MARK) {
        unmarked = false;
        redirected();
        c = c.subarray(1);
      }
      if (c.length) io.stdout(c);
    });
    err.on("data", (c: Buffer) => io.stderr(c));
    this.docker.modem.demuxStream(stream, out, err);
    // The wrapper waits (output-files.ts, HOLD): its files are opened here, then it is let go.
    const held = await holdOutput(exec, marked, ended);
    // The last moment a stop can keep the program from running at all: the wrapper has not exec'd it.
    if (signal?.aborted) {
      stream.end("stop\n");
      await Promise.all([held?.[1].close(), held?.[2].close()]).catch(() => undefined);
      throw new DiegoError("CANCELLED", "the process was stopped before it started");
    }
    stream.end("go\n");
    const files = this.outputTails(id, key, io, NO_OUTPUT, execProbe(exec), held);
    let pid: number | undefined;
    return processHandle(
      exec.id,
      async () => {
        await ended;
        let info = await exec.inspect();
        for (let i = 0; info.Running && i < 200; i++) {
          await sleep(25);
          info = await exec.inspect();
        }
        await files.drain();
        const exitCode = info.ExitCode ?? -1;
        return { exitCode, outOfMemory: await this.outOfMemory(id, exitCode, oomBefore) };
      },
      files,
      // Docker reports a fresh exec as running with pid 0 until its process is there: wait for the pid.
      async (done) => (pid ??= await execPid(exec, done)),
    );
  }

  /**
   * Starts a process through the container's main process (main-process-files.ts, `run`): undefined when
   * that cannot be done and nothing was started. The process gets what an exec of the engine would give
   * it: the main process's environment (the engine's and the container's) under the layered env, root,
   * the directory, its RLIMIT_NOFILE, /dev/null as stdin, its own session, output in its files.
   */
  private async startByMain(
    id: string,
    spec: ExecSpec,
    io: ExecIo,
    signal?: AbortSignal,
  ): Promise<ProcessHandle | undefined> {
    const facts = await this.factsOf(id);
    if (!facts.pid) return undefined;
    const key = newOutputKey();
    const env = layerEnv(spec.baseEnv ?? [], createdEnv(spec.createEnv ?? [], facts.env), spec.env).filter((e) =>
      e.includes("="),
    );
    const argv = [
      HELPER,
      "setsid",
      HELPER,
      "env",
      "-u",
      "SHLVL",
      "--",
      ...env,
      ...heldArgv(HELPER, spec.argv, spec.nofile, key),
    ];
    const oomBefore = await oomKillCount(id);
    if (signal?.aborted) throw new DiegoError("CANCELLED", "the process was stopped before it started");
    const started = await this.mainFiles.start(id, facts.pid, key, spec.dir, argv);
    if (!started) return undefined;
    const found = await findStarted(started.mainPid, started.nsPid);
    const processId = mainProcessId(key, started.nsPid);
    if (!found) {
      // Gone already (its shell failed at once): what it wrote is in its files, its status in its file.
      return this.mainStarted(id, key, processId, undefined, io, NO_OUTPUT, oomBefore);
    }
    // It waits, stopped (heldArgv), until its files are open here; a stop meanwhile ends it unrun.
    // Its files are its child's redirects from the start: plain files, or it is not that process.
    const opened =
      (await untilHeld(found)) === "held" ? await openOutputs(found.pid, () => stillRuns(found)) : undefined;
    const held = opened === "not yet" ? undefined : opened;
    if (signal?.aborted) {
      await Promise.all([held?.[1].close(), held?.[2].close()]).catch(() => undefined);
      if (await stillRuns(found)) {
        signalHeld(found.pid, "SIGTERM");
        signalHeld(found.pid, "SIGCONT");
      }
      throw new DiegoError("CANCELLED", "the process was stopped before it started");
    }
    if (await stillRuns(found)) signalHeld(found.pid, "SIGCONT");
    return this.mainStarted(id, key, processId, found, io, NO_OUTPUT, oomBefore, held);
  }

  /** The handle of a process the main process started (`found`, undefined once it is gone). */
  private mainStarted(
    id: string,
    key: string,
    processId: string,
    found: ProcStat | undefined,
    io: ExecIo | undefined,
    from: OutputOffsets,
    oomBefore: number | undefined,
    held?: HeldOutput,
  ): ProcessHandle {
    const gone: Probe = () => Promise.resolve("gone");
    const files = io ? this.outputTails(id, key, io, from, found ? startedProbe(found) : gone, held) : undefined;
    return processHandle(
      processId,
      async () => {
        if (found) await this.untilStartedEnds(id, key, found);
        await files?.drain();
        // Of one gone before it was found, the status may still be on its way.
        const exitCode = await this.startedStatus(id, key, found ? 0 : 1_000);
        return { exitCode, outOfMemory: await this.outOfMemory(id, exitCode, oomBefore) };
      },
      files,
      async () => (found && (await stillRuns(found)) ? found.pid : undefined),
    );
  }

  /**
   * Resolves once a process the main process started has ended and its status is there: told on the
   * channel (at once), else, with no channel, seen on /proc (it, then its parent, which writes the status
   * file before it ends). The /proc poll runs beside the channel too, slowly, in case the line is lost.
   */
  private async untilStartedEnds(id: string, key: string, found: ProcStat): Promise<void> {
    const parent = await procStat(found.ppid);
    const initPid = (await this.factsOf(id).catch(() => undefined))?.pid;
    if (initPid) {
      await Promise.race([this.mainFiles.untilExit(id, initPid, key), untilEnded(found, 1_000)]);
      if ((await this.mainFiles.exitOf(id, initPid, key)) !== undefined) return;
    }
    await untilEnded(found, 50);
    if (parent && parent.startTime <= found.startTime) await untilEnded(parent, 50);
  }

  /** The exit status a process the main process started told, or left in its status file; -1 when there is none. */
  private async startedStatus(id: string, key: string, waitMs = 0): Promise<number> {
    const until = Date.now() + waitMs;
    const initPid = (await this.factsOf(id).catch(() => undefined))?.pid;
    for (let wait = 2; ; wait = Math.min(wait * 2, 50)) {
      const told = initPid ? await this.mainFiles.exitOf(id, initPid, key) : undefined;
      if (told !== undefined) return told;
      const read = initPid ? await this.mainFiles.read(id, initPid, statusPath(key), 64) : undefined;
      const text = (read ?? (await this.readFile(id, statusPath(key), 64).catch(() => undefined)))?.data.toString();
      const code = Number(text?.trim() || NaN);
      if (Number.isInteger(code) && code >= 0) return code;
      if (Date.now() >= until) return -1;
      await sleep(wait);
    }
  }

  /** A process an earlier run of the cell had the main process start (`main:KEY:PID`). */
  private async reattachStarted(
    id: string,
    processId: string,
    started: { key: string; pid: number },
    io?: ExecIo,
    from?: OutputOffsets,
  ): Promise<ProcessHandle | undefined> {
    const facts = await this.factsOf(id).catch(() => undefined);
    if (!facts?.pid) return undefined;
    const main = await mainProcessOf(facts.pid);
    const found = main ? await findStarted(main, started.pid) : undefined;
    if (!found) {
      // Ended while nobody watched: its status file tells how; none, and the engine's copy of it is gone.
      if ((await this.startedStatus(id, started.key)) < 0) return undefined;
    } else if (await isHeldShell(found, started.key)) {
      // The earlier run stopped in the middle of letting it go: it goes on, as a wrapper does at the end
      // of its stdin.
      signalHeld(found.pid, "SIGCONT");
    }
    return this.mainStarted(id, started.key, processId, found, io, from ?? NO_OUTPUT, undefined);
  }

  async reattach(id: string, processId: string, io?: ExecIo, from?: OutputOffsets): Promise<ProcessHandle | undefined> {
    const started = parseMainProcessId(processId);
    if (started) return this.reattachStarted(id, processId, started, io, from);
    const exec = this.docker.getExec(processId);
    const first = await exec.inspect().catch(() => undefined);
    if (!first || !id.startsWith(first.ContainerID ?? "-")) return undefined;
    const key = outputKeyOf(first.ProcessConfig?.arguments);
    const files = key && io ? this.outputTails(id, key, io, from ?? NO_OUTPUT, execProbe(exec)) : undefined;
    let pid: number | undefined;
    return processHandle(
      processId,
      async () => {
        let info = first;
        // No stream tells when a process the cell did not start ends: ask, at most every second.
        for (let wait = 50; info.Running; wait = Math.min(1_000, wait * 2)) {
          await sleep(wait);
          const next = await exec.inspect().catch(() => undefined);
          if (!next) return { exitCode: -1, outOfMemory: false }; // the container went with it
          info = next;
        }
        await files?.drain();
        const exitCode = info.ExitCode ?? -1;
        return { exitCode, outOfMemory: await this.outOfMemory(id, exitCode, undefined) };
      },
      files,
      async (done) => (pid ??= await execPid(exec, done)),
    );
  }

  /** Makes the directory of the output files (docs/reliability.md, "Output files"), once per container. */
  outputRoot(id: string): Promise<void> {
    let made = this.outputRoots.get(id);
    if (!made) {
      made = (async () => {
        // Most often the container's main process has made it (create); a stat tells.
        const stat = await this.pathStat(id, OUTPUT_ROOT);
        if (stat?.mode !== undefined && isSharedDirectory(stat.mode)) return;
        const exec = await this.docker.getContainer(id).exec({
          Cmd: [HELPER, "mkdir", "-p", "-m", "1777", OUTPUT_ROOT],
          User: "0",
          AttachStdout: true,
          AttachStderr: true,
        });
        const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
        stream.resume();
        await new Promise<void>((resolve) => {
          stream.once("end", resolve);
          stream.once("close", resolve);
          stream.once("error", () => resolve());
        });
        let info = await exec.inspect();
        for (let i = 0; info.Running && i < 200; i++) {
          await sleep(10);
          info = await exec.inspect();
        }
        if (info.ExitCode !== 0)
          throw new Error(`cannot make ${OUTPUT_ROOT} in the container (status ${info.ExitCode})`);
      })();
      made.catch(() => this.outputRoots.delete(id));
      this.outputRoots.set(id, made);
    }
    return made;
  }

  /**
   * Tails a process's two output files from `from` into `io`; `position` and `release` are its
   * handle's output and release. A file is opened through the process's own descriptor (fd 1 and 2 on
   * the host's /proc: the cell runs in the host's pid namespace, as signals need), never by a path
   * inside the container, which a task could point at the host's files with a symlink; once the process
   * is gone, what is left is read by the engine inside the container (docs/reliability.md, "Output files").
   */
  private outputTails(id: string, key: string, io: ExecIo, from: OutputOffsets, probe: Probe, held?: HeldOutput) {
    const source = (fd: 1 | 2, path: string): OutputSource => ({
      open: async () => {
        if (held) return held[fd];
        const before = await probe();
        if (before === "gone") return "gone";
        if (before === "starting") return undefined;
        const handle = await open(`/proc/${before}/fd/${fd}`, "r").catch(() => undefined);
        if (!handle) return undefined;
        // Still the same live process (so the pid was not reused), and a plain file.
        const after = await probe().catch(() => "starting" as const);
        const stat = await handle.stat().catch(() => undefined);
        if (after === before && stat?.isFile()) return handle;
        await handle.close().catch(() => undefined);
        return after === "gone" ? "gone" : undefined;
      },
      rest: async (offset) => {
        // Most short processes leave one of their files empty: a stat (a few ms) saves the archive read.
        const stat = await this.pathStat(id, path);
        if (!stat || (stat.size ?? 0) <= offset) return undefined;
        return fileTail(await this.getArchive(id, path), offset, OUTPUT_REST_MAX_BYTES);
      },
    });
    const paths = outputPaths(key);
    const out = new OutputTail(source(1, paths.stdout), (c) => io.stdout(c), from.stdout);
    const err = new OutputTail(source(2, paths.stderr), (c) => io.stderr(c), from.stderr);
    out.start();
    err.start();
    return {
      drain: () => Promise.all([out.drain(), err.drain()]).then(() => undefined),
      stop: () => {
        out.stop();
        err.stop();
      },
      position: (): OutputOffsets => ({ stdout: out.position, stderr: err.position }),
      release: (kept: OutputOffsets) => {
        out.release(kept.stdout);
        err.release(kept.stderr);
      },
    };
  }

  /** The container's env as created (the image's, then the task's). */
  private async containerEnv(id: string): Promise<string[]> {
    return (await this.factsOf(id)).env;
  }

  async address(id: string): Promise<string> {
    return (await this.factsOf(id)).address;
  }

  async imageOf(id: string): Promise<string> {
    return (await this.factsOf(id)).image;
  }

  /**
   * The engine's inspect of a container. Of a running one it also keeps the facts (factsOf), so a caller
   * that inspects it anyway (the pool's claim) saves the first process its own inspect.
   */
  async inspect(id: string): Promise<Docker.ContainerInspectInfo> {
    const info = await this.docker.getContainer(id).inspect();
    if (info.State?.Running && !this.facts.has(id)) this.facts.set(id, Promise.resolve(factsFrom(info)));
    return info;
  }

  /**
   * A running container's env, address and image, inspected once: the env and image are fixed at create,
   * the address while the container runs (the cell never reconnects a container's network).
   */
  private factsOf(id: string): Promise<ContainerFacts> {
    let facts = this.facts.get(id);
    if (!facts) {
      facts = this.docker
        .getContainer(id)
        .inspect()
        .then((info) => {
          if (!info.State?.Running) this.facts.delete(id); // not settled yet: asked again next time
          return factsFrom(info);
        });
      facts.catch(() => this.facts.delete(id));
      this.facts.set(id, facts);
    }
    return facts;
  }

  /**
   * Whether the memory limit killed a process that exited with `exitCode`: 137 and the container's
   * cgroup counted an OOM kill since `oomBefore` (its count when the process started), or, without
   * that count, the engine says the container was OOM-killed.
   */
  private async outOfMemory(id: string, exitCode: number, oomBefore: number | undefined): Promise<boolean> {
    if (exitCode !== 137) return false;
    const after = oomBefore === undefined ? undefined : await oomKillCount(id);
    return after !== undefined ? after > oomBefore! : this.oomKilled(id);
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

  async readFile(
    id: string,
    path: string,
    maxBytes: number,
  ): Promise<{ data: Buffer; truncated: boolean } | undefined> {
    const stat = await this.pathStat(id, path);
    if (!stat) throw new DiegoError("NOT_FOUND", `${path} does not exist in the container`);
    // A regular file through the main process (main-process-files.ts); anything else, or when that
    // cannot be done, through the engine, as it always was.
    if (stat.mode !== undefined && (stat.mode & GO_MODE_TYPE) === 0) {
      const facts = await this.factsOf(id);
      const read = facts.pid ? await this.mainFiles.read(id, facts.pid, path, maxBytes) : undefined;
      if (read) return read;
    }
    return firstFile(await this.getArchive(id, path), maxBytes);
  }

  async isDirectory(id: string, path: string): Promise<boolean> {
    const stat = await this.pathStat(id, path);
    return ((stat?.mode ?? 0) & GO_MODE_DIR) !== 0;
  }

  /** What the engine tells of a path in the container (resolved within it), undefined when there is none. */
  private async pathStat(id: string, path: string): Promise<{ mode?: number; size?: number } | undefined> {
    let res: { headers?: Record<string, string | string[] | undefined>; resume?: () => void };
    try {
      res = (await this.docker.getContainer(id).infoArchive({ path })) as typeof res;
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
    res.resume?.();
    const header = res.headers?.["x-docker-container-path-stat"];
    if (typeof header !== "string") return undefined;
    return JSON.parse(Buffer.from(header, "base64").toString("utf8")) as { mode?: number; size?: number };
  }

  async remove(id: string): Promise<void> {
    this.outputRoots.delete(id);
    this.facts.delete(id);
    this.mainFiles.forget(id);
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      const code = statusCode(err);
      if (code === 404) return;
      if (code === 409 && /already in progress/.test(String((err as Error).message))) return;
      throw err;
    }
  }

  /**
   * From the container's cgroup (found through its init process's /proc/<pid>/cgroup, else the default
   * cgroupfs path), else from the engine's stats (one shot); undefined when the container is gone or stopped.
   */
  async usage(id: string): Promise<ContainerUsage | undefined> {
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(id).inspect();
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
    if (!info.State?.Running) return undefined;
    const measured = await cgroupUsage(info.Id, info.State.Pid);
    if (measured) return measured;
    const stats = (await this.docker
      .getContainer(id)
      .stats({ stream: false, "one-shot": true })
      .catch((err: unknown) => {
        if (statusCode(err) === 404) return undefined;
        throw err;
      })) as unknown as EngineStats | undefined;
    return stats ? usageFromStats(stats) : undefined;
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

/** What a process's output tails give its handle (DockerRuntime.outputTails). */
interface Tails {
  stop(): void;
  position(): OutputOffsets;
  release(kept: OutputOffsets): void;
}

/**
 * The handle of a process: `wait` resolves its end (its output delivered) and status; its tails stop
 * then; a signal goes to the process group of the pid `pidOf` finds (it is told when the process has
 * ended), and to none once it has ended.
 */
function processHandle(
  id: string,
  wait: () => Promise<ExecResult>,
  files: Tails | undefined,
  pidOf: (ended: () => boolean) => Promise<number | undefined>,
): ProcessHandle {
  let settled = false;
  const ended = () => settled;
  const exited = wait().finally(() => {
    settled = true;
    files?.stop();
  });
  exited.catch(() => undefined);
  return {
    id,
    exited,
    output: files?.position,
    release: files?.release,
    signal: async (sig) => {
      const pid = settled ? undefined : await pidOf(ended);
      if (pid === undefined || settled) return;
      await killProcessGroup(pid, sig);
    },
  };
}

/**
 * Where a process is, for reading its output through its descriptors: its host pid while it runs,
 * "starting" while that cannot be told yet, "gone" once it has ended.
 */
type Probe = () => Promise<number | "starting" | "gone">;

/** An exec's process, as the engine tells it. */
function execProbe(exec: Docker.Exec): Probe {
  return async () => {
    const info = await exec.inspect();
    if (!info.Running) return info.ExitCode === null || info.ExitCode === undefined ? "starting" : "gone";
    return info.Pid || "starting";
  };
}

/** A process the main process started, by its host pid and start time. */
function startedProbe(p: ProcStat): Probe {
  return async () => ((await stillRuns(p)) ? p.pid : "gone");
}

/** The two output files of a wrapper, opened through its descriptors. */
interface HeldOutput {
  1: FileHandle;
  2: FileHandle;
}

/**
 * Opens a just-started wrapper's two output files through its own descriptors (/proc/<pid>/fd/1 and 2,
 * once they are its redirects, plain files) while it waits for the cell (output-files.ts, HOLD), and
 * checks that the same process still runs: its pid cannot have been reused, as it waits. `marked` is
 * the wrapper's word that its redirects are made, `ended` the end of the exec's stream. Undefined when
 * it ended first (its redirect failed) or it cannot be done within `deadlineMs`: the files are then read
 * as for a reattached process.
 */
async function holdOutput(
  exec: Docker.Exec,
  marked: Promise<void>,
  ended: Promise<void>,
  deadlineMs = 5_000,
): Promise<HeldOutput | undefined> {
  const until = Date.now() + deadlineMs;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<"late">((resolve) => (timer = setTimeout(() => resolve("late"), deadlineMs)));
  const first = await Promise.race([
    marked.then(() => "marked" as const),
    ended.then(() => "ended" as const),
    deadline,
  ]);
  clearTimeout(timer);
  if (first === "ended") return undefined;
  // Once marked, the engine knows the pid at once or nearly: asked every few ms (before, as it starts).
  const pid = await execPid(exec, () => false, Math.max(0, until - Date.now()), first === "marked" ? 4 : 50);
  if (pid === undefined) return undefined;
  const same = async () => {
    const after = await exec.inspect().catch(() => undefined);
    return after?.Running === true && after.Pid === pid;
  };
  for (let wait = 1; Date.now() < until; wait = Math.min(wait * 2, 20)) {
    const got = await openOutputs(pid, same);
    if (got !== "not yet") return got; // held, or undefined: it ended
    await sleep(wait);
  }
  return undefined;
}

/**
 * Opens both output files of the process `pid` through its descriptors 1 and 2, kept when both are
 * plain files and `same` says it is still that process; undefined when they were but it is not (it
 * ended), "not yet" while they are not both plain files (its redirects are not made yet).
 */
async function openOutputs(pid: number, same: () => Promise<boolean>): Promise<HeldOutput | undefined | "not yet"> {
  const [out, err] = await Promise.all([plainFile(`/proc/${pid}/fd/1`), plainFile(`/proc/${pid}/fd/2`)]);
  if (out && err && (await same())) return { 1: out, 2: err };
  await Promise.all([out?.close(), err?.close()]).catch(() => undefined);
  return out && err ? undefined : "not yet";
}

/** Signals a process held by heldArgv: it has started nothing yet, so it alone. */
function signalHeld(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // gone meanwhile
  }
}

/** The file at `path` opened for reading when it is a plain file (not the exec's pipe yet), else undefined. */
async function plainFile(path: string): Promise<FileHandle | undefined> {
  const handle = await open(path, "r").catch(() => undefined);
  if (!handle) return undefined;
  if ((await handle.stat().catch(() => undefined))?.isFile()) return handle;
  await handle.close().catch(() => undefined);
  return undefined;
}

/**
 * The host pid of an exec's process, polling its inspect (exponential backoff with jitter, capped at
 * `maxWaitMs`) until the engine has one; undefined once the exec has ended, or after `deadlineMs`.
 */
async function execPid(
  exec: Docker.Exec,
  ended: () => boolean,
  deadlineMs = 10_000,
  maxWaitMs = 50,
): Promise<number | undefined> {
  const until = Date.now() + deadlineMs;
  for (let wait = Math.min(5, maxWaitMs); !ended() && Date.now() < until; wait = Math.min(wait * 2, maxWaitMs)) {
    const info = await exec.inspect().catch(() => undefined);
    if (info?.Pid) return info.Pid;
    if (info && !info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return undefined;
    await sleep(wait / 2 + Math.random() * (wait / 2));
  }
  return undefined;
}

/** Go's os.FileMode of a directory anyone may write to, with the sticky bit (mode 1777). */
function isSharedDirectory(mode: number): boolean {
  return (mode & GO_MODE_DIR) !== 0 && (mode & GO_MODE_STICKY) !== 0 && (mode & 0o777) === 0o777;
}

/** Bits of Go's os.FileMode, as the engine's path stat gives it. */
const GO_MODE_DIR = 0x80000000;
const GO_MODE_STICKY = 0x100000;
/** Every type bit of Go's os.FileMode (none: a regular file). */
const GO_MODE_TYPE = GO_MODE_DIR | 0x8000000 | 0x4000000 | 0x2000000 | 0x1000000 | 0x200000 | 0x80000;

interface ContainerFacts {
  env: string[];
  address: string;
  image: string;
  /** The host pid of its init. */
  pid: number;
}

function factsFrom(info: Docker.ContainerInspectInfo): ContainerFacts {
  return {
    env: info.Config?.Env ?? [],
    address: Object.values(info.NetworkSettings?.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress ?? "",
    image: info.Image,
    pid: info.State?.Pid ?? 0,
  };
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

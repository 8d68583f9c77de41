/**
 * What the cell needs from a container engine. Owned by the cell; the dockerode implementation
 * (docker-runtime.ts) and the in-memory fake (fake-runtime.ts) both pass test/runtime-contract.
 */
import type { OutputOffsets } from "./output-offsets.js";

export type { OutputOffsets } from "./output-offsets.js";

/**
 * Every container has a static busybox here (read-only), so the cell can make directories, change
 * owners and set limits whatever the image holds.
 */
export const HELPER_BUSYBOX = "/.diego/busybox";

export interface ContainerSpec {
  /** Deterministic name (one container per task per cell). */
  name: string;
  image: string;
  /**
   * The id `image` named when the task's container was asked for (ContainerRuntime.imageId): a
   * container made earlier (a pooled one) stands for a new one only when it was made from that image.
   */
  imageId?: string;
  labels: Record<string, string>;
  /** NAME=value, the task's env (the image's own env comes first, added by the engine). */
  env: string[];
  /** 0 = no limit. Swap is limited to the same amount (no extra swap). */
  memoryMb: number;
  /** 0 = no quota; only set when the runtime supports quotas. */
  diskMb: number;
  /** 0 = the engine's default share. */
  cpuShares: number;
  /** 0 = no limit. */
  maxPids: number;
  privileged: boolean;
  /** Outbound network (bridge) or none. */
  network: boolean;
}

export type ContainerStatus = "created" | "running" | "exited" | "gone";

export interface ContainerInfo {
  id: string;
  name: string;
  labels: Record<string, string>;
  status: ContainerStatus;
}

export interface ExecSpec {
  /** argv; argv[0] is the program path inside the container. */
  argv: string[];
  /** NAME=value, layered over the container's env (later wins). */
  env: string[];
  /** NAME=value under the container's env: the container's env and `env` override these (CF_INSTANCE_*). */
  baseEnv?: string[];
  /**
   * The env the container would have been created with, for one that was not (a pooled container): the
   * process gets it exactly as if it had been (createdEnv, over the image's env).
   */
  createEnv?: string[];
  /** A user name (or uid) of the image; empty = root. */
  user: string;
  /** Working directory; empty = the user's home or /. */
  dir: string;
  /** RLIMIT_NOFILE for the process; 0 = the engine's default. */
  nofile: number;
}

export interface ExecIo {
  stdout(chunk: Buffer): void;
  stderr(chunk: Buffer): void;
}

export interface ExecResult {
  exitCode: number;
  /** The memory limit killed a process of this exec. */
  outOfMemory: boolean;
}

/** A process started in a container. */
export interface ProcessHandle {
  /** The engine's id of the process (Docker: the exec id), to follow it again after a restart of the cell. */
  readonly id: string;
  /** Resolves when the process has exited and its output has been delivered. */
  readonly exited: Promise<ExecResult>;
  /**
   * Sends a signal to the process and the processes it started. A process that is starting gets it as
   * soon as it runs; one that has exited gets nothing.
   */
  signal(signal: "SIGTERM" | "SIGKILL"): Promise<void>;
  /**
   * How far the output was delivered in whole lines (see output-offsets.ts): a cell that journals it can
   * have a reattach deliver the rest. Undefined when the runtime keeps no output for a later reader.
   */
  output?(): OutputOffsets;
  /** The owner has kept the output before these offsets: the runtime may free it. */
  release?(kept: OutputOffsets): void;
}

export interface RegistryAuth {
  username: string;
  password: string;
}

export type RuntimeEvent = {
  containerId: string;
  name: string;
  labels: Record<string, string>;
  action: "create" | "start" | "die" | "destroy" | "oom";
};

/** Resource usage of one container, as TaskUsage reports it. */
export interface ContainerUsage {
  peakMemoryBytes: bigint;
  cpuTimeNs: bigint;
}

export interface ContainerRuntime {
  /**
   * The id of the local image the reference names now (it names the image's content; a new tag or pull
   * can move the reference to another id), or undefined when no local image has that reference.
   */
  imageId(image: string): Promise<string | undefined>;
  /** Pulls an image; rejects with the engine's reason. */
  pullImage(image: string, auth?: RegistryAuth): Promise<void>;
  /** Creates (does not start) a container; returns its id. */
  create(spec: ContainerSpec): Promise<string>;
  start(id: string): Promise<void>;
  /**
   * Starts a process in a running container. When `signal` is aborted before the process starts, it never
   * starts: exec rejects with a CANCELLED DiegoError.
   */
  exec(id: string, spec: ExecSpec, io: ExecIo, signal?: AbortSignal): Promise<ProcessHandle>;
  /** The container's IP address on its network; empty when it has none (network off). */
  address(id: string): Promise<string>;
  /**
   * The id of the image the container was made from, which names the image's content: until something
   * changes them, the container's files are that image's.
   */
  imageOf(id: string): Promise<string>;
  /**
   * A process an earlier run of the cell started (by its ProcessHandle.id), to wait for and signal. With
   * `io`, its output from `from` on (ProcessHandle.output of the earlier run; default the start) is
   * delivered, what it wrote while nobody read included, and `exited` resolves once it is. Undefined
   * when the engine no longer knows it in that container.
   */
  reattach(id: string, processId: string, io?: ExecIo, from?: OutputOffsets): Promise<ProcessHandle | undefined>;
  /** Extracts a tar archive into the container at `dir` (which must exist). */
  putArchive(id: string, dir: string, tar: Buffer | NodeJS.ReadableStream): Promise<void>;
  /** A tar archive of `path` in the container; rejects with NOT_FOUND when it does not exist. */
  getArchive(id: string, path: string): Promise<NodeJS.ReadableStream>;
  /**
   * The first `maxBytes` of the file at `path` in the container (and whether more followed); undefined
   * when it is not a regular file; rejects with NOT_FOUND when there is none.
   */
  readFile(id: string, path: string, maxBytes: number): Promise<{ data: Buffer; truncated: boolean } | undefined>;
  /** Whether `path` is a directory in the container (a stat, no process). */
  isDirectory(id: string, path: string): Promise<boolean>;
  /** Kills and removes the container; no error when it is already gone. */
  remove(id: string): Promise<void>;
  /**
   * What the container's processes used so far: peak memory and CPU time (the container's cgroup), or
   * undefined when the engine cannot tell (the container is gone).
   */
  usage(id: string): Promise<ContainerUsage | undefined>;
  /** Containers (running or not) carrying every label given. */
  list(labels: Record<string, string>): Promise<ContainerInfo[]>;
  /** Calls back on container events of containers carrying the labels; returns an unsubscribe. */
  watch(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void, onError: (err: Error) => void): () => void;
}

/** The runtime with some of its calls replaced; every other call goes to the runtime itself. */
export function overriding(runtime: ContainerRuntime, calls: Partial<ContainerRuntime>): ContainerRuntime {
  return new Proxy(runtime, {
    get(target, prop, receiver) {
      if (Object.hasOwn(calls, prop)) return calls[prop as keyof ContainerRuntime];
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

import { EventEmitter } from "node:events";
import { posix } from "node:path";
import { Readable } from "node:stream";
import { DiegoError } from "@diego/models";
import { extract, pack } from "tar-stream";
import type {
  ContainerInfo,
  ContainerUsage,
  ContainerRuntime,
  ContainerSpec,
  ContainerStatus,
  ExecIo,
  ExecResult,
  ExecSpec,
  ProcessHandle,
  RegistryAuth,
  RuntimeEvent,
} from "./container-runtime.js";
import { FakeShell, mkdirs, normalize } from "./fake-shell.js";
import { LineOffset, NO_OUTPUT, type OutputOffsets } from "./output-offsets.js";
import { createdEnv, envValues } from "./env-layers.js";
import { firstFile } from "./tar-files.js";

interface FakeContainer {
  id: string;
  spec: ContainerSpec;
  status: ContainerStatus;
  files: Map<string, Buffer>;
  dirs: Set<string>;
  processes: Set<FakeProcess>;
  /** The network address (empty without network). */
  address: string;
  /** Processes started, and the most that ran at once: what usage() reports from. */
  started: number;
  mostAtOnce: number;
}

interface FakeProcess {
  signal(sig: "SIGTERM" | "SIGKILL"): void;
}

export interface FakeRuntimeOptions {
  /** Images present locally. */
  images?: string[];
  /** Images a pull can fetch; a pull of any other fails with `manifest unknown`. */
  registry?: string[];
  /** Milliseconds each engine call takes (default 0). */
  latencyMs?: number;
}

const BASE_DIRS = ["/", "/bin", "/etc", "/home", "/home/vcap", "/root", "/tmp", "/dev", "/proc", "/sys"];
/** The users of diego/busybox: root and the non-root vcap (home /home/vcap). */
const PASSWD = "root:x:0:0:root:/root:/bin/sh\nvcap:x:2000:2000:vcap:/home/vcap:/bin/sh\n";
/** What usage() counts per process started (CPU) and per process running at once (memory). */
export const FAKE_CPU_NS_PER_PROCESS = 1_000_000n;
export const FAKE_MEMORY_BYTES_PER_PROCESS = 1024n * 1024n;

/** An in-memory ContainerRuntime for tests. Processes run the tiny shell of fake-shell.ts. */
export class FakeRuntime implements ContainerRuntime {
  private readonly containers = new Map<string, FakeContainer>();
  private readonly images: Set<string>;
  private readonly registry: Set<string>;
  private readonly events = new EventEmitter();
  private nextId = 1;
  /** Every process by id, for reattach (a cell restarted on the same runtime). */
  private readonly handles = new Map<string, { containerId: string; handle: ProcessHandle; output: FakeOutput }>();
  /** Every image pull, for assertions. */
  readonly pulls: Array<{ image: string; auth?: RegistryAuth }> = [];

  constructor(private readonly options: FakeRuntimeOptions = {}) {
    this.images = new Set(options.images ?? ["diego/busybox:latest"]);
    this.registry = new Set(options.registry ?? []);
  }

  private async delay(): Promise<void> {
    if (this.options.latencyMs) await sleep(this.options.latencyMs);
  }

  async imageId(image: string): Promise<string | undefined> {
    await this.delay();
    return this.images.has(image) ? `fake-image:${image}` : undefined;
  }

  async pullImage(image: string, auth?: RegistryAuth): Promise<void> {
    await this.delay();
    this.pulls.push({ image, auth });
    if (!this.registry.has(image)) throw new Error(`manifest for ${image} not found: manifest unknown`);
    this.images.add(image);
  }

  async create(spec: ContainerSpec): Promise<string> {
    await this.delay();
    if (!this.images.has(spec.image)) throw new DiegoError("NOT_FOUND", `No such image: ${spec.image}`);
    if ([...this.containers.values()].some((c) => c.spec.name === spec.name)) {
      throw new DiegoError("ALREADY_EXISTS", `Conflict. The container name "/${spec.name}" is already in use`);
    }
    const n = this.nextId++;
    const id = `fake${String(n).padStart(12, "0")}`;
    this.containers.set(id, {
      id,
      spec,
      status: "created",
      files: new Map([["/etc/passwd", Buffer.from(PASSWD)]]),
      dirs: new Set(BASE_DIRS),
      processes: new Set(),
      address: spec.network ? `10.254.${(n >> 8) & 255}.${n & 255}` : "",
      started: 0,
      mostAtOnce: 0,
    });
    this.emit(id, "create");
    return id;
  }

  async start(id: string): Promise<void> {
    await this.delay();
    this.get(id).status = "running";
    this.emit(id, "start");
  }

  async exec(id: string, spec: ExecSpec, io: ExecIo, signal?: AbortSignal): Promise<ProcessHandle> {
    await this.delay();
    const c = this.get(id);
    if (c.status !== "running") throw new DiegoError("FAILED_PRECONDITION", `container ${id} is not running`);
    if (signal?.aborted) throw new DiegoError("CANCELLED", "the process was stopped before it started");
    // Layered as the Docker runtime layers them.
    const env = envValues(spec.baseEnv ?? [], createdEnv(spec.createEnv ?? [], c.spec.env), spec.env);
    let ignoreTerm = false;
    let wake: (() => void) | undefined;
    let killedBy: "SIGTERM" | "SIGKILL" | undefined;
    const proc: FakeProcess = {
      signal: (sig) => {
        if (sig === "SIGTERM" && ignoreTerm) return;
        killedBy ??= sig;
        wake?.();
      },
    };
    c.processes.add(proc);
    c.started++;
    c.mostAtOnce = Math.max(c.mostAtOnce, c.processes.size);
    const output = new FakeOutput();
    const sink: ExecIo = { stdout: (b) => output.write("stdout", b), stderr: (b) => output.write("stderr", b) };
    const position = output.follow(io, NO_OUTPUT);
    const shell = new FakeShell(c, env, sink, spec.dir || "/", {
      sleep: (ms) =>
        new Promise<void>((resolve) => {
          if (killedBy) return resolve();
          const t = setTimeout(resolve, ms);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        }),
      killed: () => killedBy,
      ignoreTerm: () => {
        ignoreTerm = true;
      },
    });
    const exited = (async (): Promise<ExecResult> => {
      await Promise.resolve();
      const result = await shell.run(spec.argv);
      c.processes.delete(proc);
      if (killedBy) return { exitCode: killedBy === "SIGKILL" ? 137 : 143, outOfMemory: false };
      return result;
    })();
    const handle: ProcessHandle = {
      id: `proc${this.nextId++}`,
      exited,
      signal: async (sig) => proc.signal(sig),
      output: position,
      release: () => undefined,
    };
    this.handles.set(handle.id, { containerId: id, handle, output });
    return handle;
  }

  async reattach(id: string, processId: string, io?: ExecIo, from?: OutputOffsets): Promise<ProcessHandle | undefined> {
    await this.delay();
    const found = this.handles.get(processId);
    if (!found || found.containerId !== id || !this.containers.has(id)) return undefined;
    if (!io) return { ...found.handle, output: undefined };
    return { ...found.handle, output: found.output.follow(io, from ?? NO_OUTPUT) };
  }

  async putArchive(id: string, dir: string, archive: Buffer | NodeJS.ReadableStream): Promise<void> {
    await this.delay();
    const tar = Buffer.isBuffer(archive) ? archive : await collect(archive);
    const c = this.get(id);
    if (!c.dirs.has(normalize(dir)))
      throw new DiegoError("NOT_FOUND", `Could not find the file ${dir} in container ${id}`);
    const ex = extract();
    const done = new Promise<void>((resolve, reject) => {
      ex.on("entry", (header, stream, next) => {
        const chunks: Buffer[] = [];
        stream.on("data", (b: unknown) => void chunks.push(b as Buffer));
        stream.on("end", () => {
          const path = normalize(posix.join(dir, header.name));
          if (header.type === "directory") mkdirs(c, path);
          else {
            mkdirs(c, posix.dirname(path));
            c.files.set(path, Buffer.concat(chunks));
          }
          next();
        });
        stream.resume();
      });
      ex.on("finish", resolve);
      ex.on("error", reject);
    });
    ex.end(tar);
    await done;
  }

  async readFile(
    id: string,
    path: string,
    maxBytes: number,
  ): Promise<{ data: Buffer; truncated: boolean } | undefined> {
    return firstFile(await this.getArchive(id, path), maxBytes);
  }

  async getArchive(id: string, path: string): Promise<NodeJS.ReadableStream> {
    await this.delay();
    const c = this.get(id);
    const p = normalize(path);
    const p2 = pack();
    const base = posix.basename(p);
    if (c.files.has(p)) {
      p2.entry({ name: base, size: c.files.get(p)!.length }, c.files.get(p)!);
    } else if (c.dirs.has(p)) {
      p2.entry({ name: base, type: "directory" });
      for (const [f, data] of c.files)
        if (f.startsWith(`${p}/`)) p2.entry({ name: `${base}/${f.slice(p.length + 1)}`, size: data.length }, data);
    } else {
      throw new DiegoError("NOT_FOUND", `${path} does not exist in the container`);
    }
    p2.finalize();
    return Readable.from(p2) as unknown as NodeJS.ReadableStream;
  }

  async isDirectory(id: string, path: string): Promise<boolean> {
    await this.delay();
    return this.get(id).dirs.has(normalize(path));
  }

  async remove(id: string): Promise<void> {
    await this.delay();
    const c = this.containers.get(id);
    if (!c) return;
    for (const p of c.processes) p.signal("SIGKILL");
    for (const [pid, h] of this.handles) if (h.containerId === id) this.handles.delete(pid);
    c.status = "gone";
    this.containers.delete(id);
    this.emit(id, "die", c);
    this.emit(id, "destroy", c);
  }

  /** Deterministic: FAKE_CPU_NS_PER_PROCESS per process started, FAKE_MEMORY_BYTES_PER_PROCESS per process at once. */
  async usage(id: string): Promise<ContainerUsage | undefined> {
    await this.delay();
    const c = this.containers.get(id);
    if (!c || c.status !== "running") return undefined;
    return {
      peakMemoryBytes: FAKE_MEMORY_BYTES_PER_PROCESS * BigInt(c.mostAtOnce),
      cpuTimeNs: FAKE_CPU_NS_PER_PROCESS * BigInt(c.started),
    };
  }

  async address(id: string): Promise<string> {
    await this.delay();
    return this.get(id).address;
  }

  async imageOf(id: string): Promise<string> {
    await this.delay();
    return `fake-image:${this.get(id).spec.image}`;
  }

  async list(labels: Record<string, string>): Promise<ContainerInfo[]> {
    await this.delay();
    return [...this.containers.values()]
      .filter((c) => Object.entries(labels).every(([k, v]) => c.spec.labels[k] === v))
      .map((c) => ({ id: c.id, name: c.spec.name, labels: { ...c.spec.labels }, status: c.status }));
  }

  watch(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void): () => void {
    const listener = (e: RuntimeEvent) => {
      if (Object.entries(labels).every(([k, v]) => e.labels[k] === v)) onEvent(e);
    };
    this.events.on("event", listener);
    return () => this.events.off("event", listener);
  }

  /** Test helper: the container's spec as created. */
  specOf(id: string): ContainerSpec | undefined {
    return this.containers.get(id)?.spec;
  }

  /** Test helper: removes a container behind the cell's back (as `docker rm -f` would). */
  vanish(id: string): void {
    void this.remove(id);
  }

  private get(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw new DiegoError("NOT_FOUND", `No such container: ${id}`);
    return c;
  }

  private emit(id: string, action: RuntimeEvent["action"], c = this.containers.get(id)): void {
    if (!c) return;
    this.events.emit("event", { containerId: id, name: c.spec.name, labels: { ...c.spec.labels }, action });
  }
}

/**
 * A fake process's output, kept whole as Docker's output files keep it (docs/reliability.md, "Output
 * files"): each reader gets it from its offsets on, then as it comes.
 */
class FakeOutput {
  private readonly data: Record<keyof OutputOffsets, Buffer[]> = { stdout: [], stderr: [] };
  private readonly readers = new Set<(stream: keyof OutputOffsets, chunk: Buffer) => void>();

  write(stream: keyof OutputOffsets, chunk: Buffer): void {
    const copy = Buffer.from(chunk);
    this.data[stream].push(copy);
    for (const read of this.readers) read(stream, copy);
  }

  /** Delivers to `io` from `from` on; returns how far it delivered whole lines. */
  follow(io: ExecIo, from: OutputOffsets): () => OutputOffsets {
    const at = { stdout: new LineOffset(from.stdout), stderr: new LineOffset(from.stderr) };
    const deliver = (stream: keyof OutputOffsets, chunk: Buffer) => {
      at[stream].advance(chunk);
      io[stream](chunk);
    };
    for (const stream of ["stdout", "stderr"] as const) {
      const rest = Buffer.concat(this.data[stream]).subarray(from[stream]);
      if (rest.length) deliver(stream, rest);
    }
    this.readers.add(deliver);
    return () => ({ stdout: at.stdout.value, stderr: at.stderr.value });
  }
}

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

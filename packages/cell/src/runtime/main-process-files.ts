import { constants } from "node:fs";
import { open, readFile, readlink, stat, type FileHandle } from "node:fs/promises";
import { OUTPUT_ROOT } from "./output-files.js";

/**
 * Files of a container read through its idle main process (docs/performance.md, "Result files"), which
 * saves the engine's archive read (a process the engine starts for each call, 50–100 ms).
 *
 * The main process is the helper busybox's shell running MAIN_SCRIPT: it makes the output directory,
 * opens two FIFOs and unlinks them at once (they are reachable only through its own descriptors 3 and
 * 4), then serves requests: a line `N PATH` on fd 3 makes it open PATH as its fd 5, inside the
 * container (paths and symlinks resolve there, as the task sees them), and answer `N ok` or `N no` on
 * fd 4. The cell opens those descriptors, and the file, through the host's /proc/<pid>/fd/ of that
 * process, having checked that the process is in the container's pid namespace: whatever a process
 * of the container holds open, the container could read itself, so nothing of the host can be read
 * this way. When the shell cannot make its FIFOs (the image's user is not root) it only idles, and
 * the cell reads through the engine.
 */
export function mainScript(helper: string): string {
  return [
    `${helper} mkdir -m 1777 ${OUTPUT_ROOT} 2>/dev/null`,
    `i=${OUTPUT_ROOT}/.in$$; o=${OUTPUT_ROOT}/.out$$`,
    `if ${helper} mkfifo -m 600 $i $o 2>/dev/null && exec 3<>$i 4<>$o; then`,
    `  ${helper} rm -f $i $o`,
    `  while read -r n p <&3; do exec 5<&-; if command exec 5<"$p" 2>/dev/null; then echo "$n ok" >&4; else echo "$n no" >&4; fi; done`,
    `fi`,
    `exec ${helper} sleep 2147483647`,
  ].join("\n");
}

/** How long the cell waits for the main process's answer before it reads through the engine. */
const ANSWER_MS = 1_000;

interface Channel {
  pid: number;
  /** The container's pid namespace, as /proc/<pid>/ns/pid reads. */
  ns: string;
  requests: FileHandle;
  answers: FileHandle;
  next: number;
  /** Requests one at a time. */
  queue: Promise<unknown>;
}

/** The channels to the main processes of a cell's containers, by container id. */
export class MainProcessFiles {
  private readonly channels = new Map<string, Promise<Channel | undefined>>();

  /**
   * The first `maxBytes` of the regular file at `path` (absolute) in the container whose init has host
   * pid `initPid`, and whether more followed; undefined when it cannot be read this way.
   */
  async read(
    id: string,
    initPid: number,
    path: string,
    maxBytes: number,
  ): Promise<{ data: Buffer; truncated: boolean } | undefined> {
    if (!path.startsWith("/") || /[\n\r]/.test(path) || path.trim() !== path) return undefined;
    let channel = this.channels.get(id);
    if (!channel) {
      channel = connect(initPid).catch(() => undefined);
      this.channels.set(id, channel);
    }
    const c = await channel;
    if (!c) return undefined;
    const turn = c.queue.then(() => this.ask(id, c, path, maxBytes));
    c.queue = turn.catch(() => undefined);
    return turn;
  }

  /** Forgets a container's channel (it is gone). */
  forget(id: string): void {
    const channel = this.channels.get(id);
    this.channels.delete(id);
    void channel?.then((c) => close(c));
  }

  private async ask(id: string, c: Channel, path: string, maxBytes: number) {
    const n = c.next++;
    try {
      await c.requests.write(`${n} ${path}\n`);
      const answer = await readAnswer(c.answers, n, Date.now() + ANSWER_MS);
      if (answer !== "ok") return undefined;
      if (!(await sameNamespace(c))) throw new Error("the main process is gone");
      // Only a regular file is opened (a stat follows the descriptor without opening it), and checked again.
      if (!(await stat(`/proc/${c.pid}/fd/5`)).isFile()) return undefined;
      const file = await open(`/proc/${c.pid}/fd/5`, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
      try {
        if (!(await sameNamespace(c)) || !(await file.stat()).isFile()) return undefined;
        const buffer = Buffer.alloc(Math.min(maxBytes, 64 * 1024 * 1024) + 1);
        let size = 0;
        for (;;) {
          const { bytesRead } = await file.read(buffer, size, buffer.length - size, size);
          if (bytesRead === 0) break;
          size += bytesRead;
          if (size === buffer.length) break;
        }
        const truncated = size > maxBytes;
        return { data: Buffer.from(buffer.subarray(0, Math.min(size, maxBytes))), truncated };
      } finally {
        await file.close();
      }
    } catch {
      // A channel that failed once is not trusted again: the engine reads from now on.
      this.channels.set(id, Promise.resolve(undefined));
      await close(c);
      return undefined;
    }
  }
}

async function connect(initPid: number): Promise<Channel | undefined> {
  const children = (await readFile(`/proc/${initPid}/task/${initPid}/children`, "utf8")).trim().split(/\s+/);
  const pid = Number(children[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  const ns = await readlink(`/proc/${initPid}/ns/pid`);
  if ((await readlink(`/proc/${pid}/ns/pid`)) !== ns) return undefined;
  const requests = await open(`/proc/${pid}/fd/3`, constants.O_WRONLY | constants.O_NONBLOCK);
  const answers = await open(`/proc/${pid}/fd/4`, constants.O_RDONLY | constants.O_NONBLOCK).catch(async (err) => {
    await requests.close();
    throw err;
  });
  const c: Channel = { pid, ns, requests, answers, next: 1, queue: Promise.resolve() };
  // Both must be the FIFOs of a process of the container: checked after the opens too.
  const [r, a] = await Promise.all([requests.stat(), answers.stat()]);
  if (!r.isFIFO() || !a.isFIFO() || !(await sameNamespace(c))) {
    await close(c);
    return undefined;
  }
  return c;
}

async function sameNamespace(c: Channel): Promise<boolean> {
  return (await readlink(`/proc/${c.pid}/ns/pid`).catch(() => "")) === c.ns;
}

/** The answer to request `n` (earlier answers, of requests given up on, are skipped). */
async function readAnswer(answers: FileHandle, n: number, until: number): Promise<string> {
  let text = "";
  const buffer = Buffer.alloc(256);
  for (let wait = 1; ; wait = Math.min(wait * 2, 10)) {
    const got = await answers.read(buffer, 0, buffer.length, null).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "EAGAIN") return { bytesRead: -1 };
      throw err;
    });
    if (got.bytesRead > 0) {
      text += buffer.toString("utf8", 0, got.bytesRead);
      let nl: number;
      while ((nl = text.indexOf("\n")) >= 0) {
        const [m, answer] = text.slice(0, nl).split(" ");
        text = text.slice(nl + 1);
        if (Number(m) === n) return answer ?? "";
      }
      continue;
    }
    if (got.bytesRead === 0) throw new Error("the main process closed its answers");
    if (Date.now() > until) throw new Error("the main process did not answer");
    await new Promise((r) => setTimeout(r, wait));
  }
}

async function close(c: Channel | undefined): Promise<void> {
  await Promise.all([c?.requests.close(), c?.answers.close()]).catch(() => undefined);
}

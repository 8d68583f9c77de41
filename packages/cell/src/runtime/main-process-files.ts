import { closeSync, constants, fstatSync, openSync } from "node:fs";
import { open, readFile, readlink, stat, type FileHandle } from "node:fs/promises";
import { Socket } from "node:net";
import { mainProcessOf } from "./main-process-starts.js";
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
 *
 * It also starts processes (docs/performance.md, "Processes started by the main process"): a line
 * `N run WORDS` (WORDS in the shell's single quotes, newlines as "$NL": startRequest) makes it fork a
 * child that goes to directory DIR (the second word; none when empty), appends its stdout and stderr to
 * the output files of KEY (the first word), starts the rest as a program in the background and answers
 * `N ok PID` (its pid in the container), then waits for it and tells its exit status, as the shell
 * gives it (128 + the signal for one killed): `KEY exit STATUS` on the answers (no disk needed), and in
 * KEY's status file (for a cell that starts after the line was read). `N no` when the directory or the
 * files cannot be had: nothing was started. The child keeps none of the channel's descriptors, nor
 * does the program.
 */
export function mainScript(helper: string): string {
  return [
    `${helper} mkdir -m 1777 ${OUTPUT_ROOT} 2>/dev/null`,
    `i=${OUTPUT_ROOT}/.in$$; o=${OUTPUT_ROOT}/.out$$; NL='`,
    `'`,
    `r() {`,
    `  y=$1; k=${OUTPUT_ROOT}/$1; d=$2`,
    `  ( exec 3<&- 5<&-; shift 2`,
    `    if [ -n "$d" ] && ! cd -- "$d" 2>/dev/null || ! command exec >>$k.out 2>>$k.err; then echo "$n no" >&4; exit 0; fi`,
    `    "$@" </dev/null 4<&- &`,
    `    echo "$n ok $!" >&4`,
    `    wait $!; s=$?; echo "$y exit $s" >&4; echo $s 2>/dev/null >$k.status`,
    `  ) &`,
    `}`,
    `if ${helper} mkfifo -m 600 $i $o 2>/dev/null && exec 3<>$i 4<>$o; then`,
    `  ${helper} rm -f $i $o`,
    `  while read -r n p <&3; do`,
    `    case $p in`,
    `    "run "*) if ! command eval "set -- \${p#run }" || ! r "$@"; then echo "$n no" >&4; fi;;`,
    `    *) exec 5<&-; if command exec 5<"$p" 2>/dev/null; then echo "$n ok" >&4; else echo "$n no" >&4; fi;;`,
    `    esac`,
    `  done`,
    `fi`,
    `exec ${helper} sleep 2147483647`,
  ].join("\n");
}

/**
 * The request line's WORDS for mainScript's `run`: each word in single quotes (a quote inside as
 * '\'' ), a newline as '"$NL"' so that the request stays one line. Pure.
 */
export function startRequest(words: readonly string[]): string {
  return words.map((w) => `'${w.replace(/'/g, "'\\''").replace(/\n/g, `'"$NL"'`)}'`).join(" ");
}

/** How long the cell waits for the main process's answer before it reads through the engine. */
const ANSWER_MS = 1_000;

interface Channel {
  pid: number;
  /** The container's pid namespace, as /proc/<pid>/ns/pid reads. */
  ns: string;
  requests: FileHandle;
  /** The answers, read as they come (the cell's epoll, not a poll). */
  answers: Socket;
  next: number;
  /** Requests one at a time. */
  queue: Promise<unknown>;
  /** The main process runs as root (uid 0, all four ids): only then does it start processes. */
  root: boolean;
  /** Read from the answers, not yet a whole line. */
  unread: string;
  /** The request waiting for its answer. */
  waiting?: { n: number; answer: (text: string | undefined) => void };
  /** Exit statuses of processes it started, by key, as told. */
  exits: Map<string, number>;
  /** Called once the exit of a key is told, or the channel is closed. */
  exitWaiters: Map<string, Array<() => void>>;
  closed: boolean;
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
    const c = await this.channel(id, initPid);
    if (!c) return undefined;
    return this.inTurn(c, () => this.openAndRead(id, c, path, maxBytes));
  }

  /**
   * Has the main process start `argv` in `dir` (empty: its own, /) with its output in the files of `key`
   * (mainScript's `run`): the pid of the program in the container and the host pid of the main process,
   * or undefined when nothing was started (no channel, or the main process said no: the directory or
   * the files cannot be had). Rejects when the answer does not come within `answerMs`: then the program
   * may have started, and must not be started another way.
   */
  async start(
    id: string,
    initPid: number,
    key: string,
    dir: string,
    argv: readonly string[],
    answerMs = 30_000,
  ): Promise<{ nsPid: number; mainPid: number } | undefined> {
    const c = await this.channel(id, initPid);
    if (!c?.root) return undefined;
    const line = `run ${startRequest([key, dir, ...argv])}`;
    return this.inTurn(c, async () => {
      const n = c.next++;
      const answer = await ask(c, n, line, answerMs).catch(async (err: unknown) => {
        this.channels.set(id, Promise.resolve(undefined));
        await close(c);
        throw err;
      });
      const [word, pid] = answer.split(" ");
      if (word !== "ok") return undefined;
      const nsPid = Number(pid);
      if (!Number.isInteger(nsPid) || nsPid <= 0) throw new Error(`the main process answered "${answer}"`);
      return { nsPid, mainPid: c.pid };
    });
  }

  /**
   * The exit status of the process of `key` the main process started, as its child told it on the
   * channel (no disk needed: a task that filled its disk still gets its true status); undefined when it
   * has not been told, or there is no channel.
   */
  async exitOf(id: string, initPid: number, key: string): Promise<number | undefined> {
    return (await this.channel(id, initPid))?.exits.get(key);
  }

  /** Resolves once the exit of `key` is told, or there is no channel (the caller then looks itself). */
  async untilExit(id: string, initPid: number, key: string): Promise<void> {
    const c = await this.channel(id, initPid);
    if (!c || c.closed || c.exits.has(key)) return;
    await new Promise<void>((resolve) => c.exitWaiters.set(key, [...(c.exitWaiters.get(key) ?? []), resolve]));
  }

  private channel(id: string, initPid: number): Promise<Channel | undefined> {
    let channel = this.channels.get(id);
    if (!channel) {
      channel = connect(initPid).catch(() => undefined);
      this.channels.set(id, channel);
    }
    return channel;
  }

  /** Requests one at a time per channel. */
  private inTurn<T>(c: Channel, fn: () => Promise<T>): Promise<T> {
    const turn = c.queue.then(fn);
    c.queue = turn.catch(() => undefined);
    return turn;
  }

  /** Forgets a container's channel (it is gone). */
  forget(id: string): void {
    const channel = this.channels.get(id);
    this.channels.delete(id);
    void channel?.then((c) => close(c));
  }

  private async openAndRead(id: string, c: Channel, path: string, maxBytes: number) {
    const n = c.next++;
    try {
      const answer = await ask(c, n, path, ANSWER_MS);
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
  const pid = await mainProcessOf(initPid);
  if (!pid || !Number.isInteger(pid) || pid <= 0) return undefined;
  const ns = await readlink(`/proc/${initPid}/ns/pid`);
  if ((await readlink(`/proc/${pid}/ns/pid`)) !== ns) return undefined;
  const requests = await open(`/proc/${pid}/fd/3`, constants.O_WRONLY | constants.O_NONBLOCK);
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/fd/4`, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    await requests.close();
    throw err;
  }
  // Both must be the FIFOs of a process of the container: checked after the opens too.
  const [r, a] = [await requests.stat(), fstatSync(fd)];
  if (!r.isFIFO() || !a.isFIFO()) {
    closeSync(fd);
    await requests.close();
    return undefined;
  }
  // Numbers start anywhere: an answer an earlier run of the cell left unread never matches a request of this one.
  const next = 1 + Math.floor(Math.random() * 1e9);
  const c: Channel = {
    pid,
    ns,
    requests,
    answers: new Socket({ fd, readable: true, writable: false }),
    next,
    queue: Promise.resolve(),
    root: false,
    unread: "",
    exits: new Map(),
    exitWaiters: new Map(),
    closed: false,
  };
  c.answers.on("data", (chunk: Buffer) => heard(c, chunk.toString("utf8")));
  c.answers.on("error", () => shut(c));
  c.answers.on("close", () => shut(c));
  c.answers.on("end", () => shut(c));
  c.root = /^Uid:\s+0\s+0\s+0\s+0\s*$/m.test(await readFile(`/proc/${pid}/status`, "utf8"));
  if (!(await sameNamespace(c))) {
    await close(c);
    return undefined;
  }
  return c;
}

async function sameNamespace(c: Channel): Promise<boolean> {
  return (await readlink(`/proc/${c.pid}/ns/pid`).catch(() => "")) === c.ns;
}

/** Sends request `n` and resolves its answer (all after the number); rejects after `ms` or when the channel closes. */
async function ask(c: Channel, n: number, request: string, ms: number): Promise<string> {
  if (c.closed) throw new Error("the main process closed its answers");
  const answer = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      c.waiting = undefined;
      reject(new Error("the main process did not answer"));
    }, ms);
    c.waiting = {
      n,
      answer: (text) => {
        clearTimeout(timer);
        c.waiting = undefined;
        if (text === undefined) reject(new Error("the main process closed its answers"));
        else resolve(text);
      },
    };
  });
  answer.catch(() => undefined); // when the write fails, the caller gets its error, not this one
  try {
    await c.requests.write(`${n} ${request}\n`);
  } catch (err) {
    c.waiting?.answer(undefined);
    throw err;
  }
  return answer;
}

/**
 * Lines read from the answers: the answer to the waiting request, exit lines (kept), anything else
 * (answers of requests given up on) skipped. What a process of the container could write there is
 * bounded: a line longer than 64 KiB is dropped.
 */
function heard(c: Channel, text: string): void {
  c.unread += text;
  let nl: number;
  while ((nl = c.unread.indexOf("\n")) >= 0) {
    const line = c.unread.slice(0, nl);
    c.unread = c.unread.slice(nl + 1);
    const exit = EXIT_LINE.exec(line);
    if (exit) {
      c.exits.set(exit[1], Number(exit[2]));
      for (const resolve of c.exitWaiters.get(exit[1]) ?? []) resolve();
      c.exitWaiters.delete(exit[1]);
      continue;
    }
    const space = line.indexOf(" ");
    if (c.waiting && space > 0 && Number(line.slice(0, space)) === c.waiting.n) c.waiting.answer(line.slice(space + 1));
  }
  if (c.unread.length > 64 * 1024) c.unread = "";
}

/** The channel is closed: its waiters are told. */
function shut(c: Channel): void {
  if (c.closed) return;
  c.closed = true;
  c.waiting?.answer(undefined);
  for (const waiters of c.exitWaiters.values()) for (const resolve of waiters) resolve();
  c.exitWaiters.clear();
}

/** What the child that started a process writes once it has ended (mainScript's `run`). */
const EXIT_LINE = /^([0-9a-f]{24}) exit ([0-9]{1,3})$/;

async function close(c: Channel | undefined): Promise<void> {
  if (!c) return;
  c.answers.destroy();
  shut(c);
  await c.requests.close().catch(() => undefined);
}

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
  answers: FileHandle;
  next: number;
  /** Requests one at a time. */
  queue: Promise<unknown>;
  /** The main process runs as root (uid 0, all four ids): only then does it start processes. */
  root: boolean;
  /** Read from the answers, not yet a whole line. */
  unread: string;
  /** Exit statuses of processes it started, by key, as read. */
  exits: Map<string, number>;
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
    return this.inTurn(c, () => this.ask(id, c, path, maxBytes));
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
      await c.requests.write(`${n} ${line}\n`);
      const answer = (await readAnswer(c, n, Date.now() + answerMs).catch(async (err: unknown) => {
        this.channels.set(id, Promise.resolve(undefined));
        await close(c);
        throw err;
      }))!;
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
    const c = await this.channel(id, initPid);
    if (!c) return undefined;
    return this.inTurn(c, async () => {
      if (!c.exits.has(key)) await readAnswer(c, undefined, 0).catch(() => undefined);
      const code = c.exits.get(key);
      c.exits.delete(key);
      return code;
    });
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

  private async ask(id: string, c: Channel, path: string, maxBytes: number) {
    const n = c.next++;
    try {
      await c.requests.write(`${n} ${path}\n`);
      const answer = await readAnswer(c, n, Date.now() + ANSWER_MS);
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
  // Numbers start anywhere: an answer an earlier run of the cell left unread never matches a request of this one.
  const next = 1 + Math.floor(Math.random() * 1e9);
  const c: Channel = {
    pid,
    ns,
    requests,
    answers,
    next,
    queue: Promise.resolve(),
    root: false,
    unread: "",
    exits: new Map(),
  };
  // Both must be the FIFOs of a process of the container: checked after the opens too.
  const [r, a] = await Promise.all([requests.stat(), answers.stat()]);
  c.root = /^Uid:\s+0\s+0\s+0\s+0\s*$/m.test(await readFile(`/proc/${pid}/status`, "utf8"));
  if (!r.isFIFO() || !a.isFIFO() || !(await sameNamespace(c))) {
    await close(c);
    return undefined;
  }
  return c;
}

async function sameNamespace(c: Channel): Promise<boolean> {
  return (await readlink(`/proc/${c.pid}/ns/pid`).catch(() => "")) === c.ns;
}

/**
 * The answer to request `n`, all after the number. Earlier answers, of requests given up on, are
 * skipped; exit lines (`KEY exit STATUS`) are kept in the channel's `exits`. With `n` undefined, reads
 * only what is there now (the exits), and resolves undefined.
 */
async function readAnswer(c: Channel, n: number | undefined, until: number): Promise<string | undefined> {
  const buffer = Buffer.alloc(4096);
  for (let wait = 1; ; wait = Math.min(wait * 2, 10)) {
    let nl: number;
    while ((nl = c.unread.indexOf("\n")) >= 0) {
      const line = c.unread.slice(0, nl);
      c.unread = c.unread.slice(nl + 1);
      const exit = EXIT_LINE.exec(line);
      if (exit) c.exits.set(exit[1], Number(exit[2]));
      const space = line.indexOf(" ");
      if (n !== undefined && space > 0 && Number(line.slice(0, space)) === n) return line.slice(space + 1);
    }
    const got = await c.answers.read(buffer, 0, buffer.length, null).catch((err: NodeJS.ErrnoException) => {
      if (err.code === "EAGAIN") return { bytesRead: -1 };
      throw err;
    });
    if (got.bytesRead > 0) {
      c.unread += buffer.toString("utf8", 0, got.bytesRead);
      continue;
    }
    if (got.bytesRead === 0) throw new Error("the main process closed its answers");
    if (n === undefined) return undefined;
    if (Date.now() > until) throw new Error("the main process did not answer");
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** What the child that started a process writes once it has ended (mainScript's `run`). */
const EXIT_LINE = /^([0-9a-f]{24}) exit ([0-9]{1,3})$/;

async function close(c: Channel | undefined): Promise<void> {
  await Promise.all([c?.requests.close(), c?.answers.close()]).catch(() => undefined);
}

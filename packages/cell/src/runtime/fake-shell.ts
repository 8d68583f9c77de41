import { posix } from "node:path";
import type { ExecIo, ExecResult } from "./container-runtime.js";

/** The files of a fake container, as its shell sees them. */
export interface ShellFiles {
  files: Map<string, Buffer>;
  dirs: Set<string>;
}

/** What the shell asks of the process running it: sleep (cut short by a kill), whether it was killed, trap TERM. */
export interface ShellHooks {
  sleep(ms: number): Promise<void>;
  killed(): "SIGTERM" | "SIGKILL" | undefined;
  ignoreTerm(): void;
}

/**
 * The fake runtime's tiny shell: `sh -c` scripts of `;`/`&&` separated commands among echo, printf, cat,
 * sleep, exit, pwd, true, false, mkdir -p, trap "" TERM, with $NAME expansion and `>file` / `>&2` redirects;
 * `fake-oom` exits 137 as if the memory limit struck.
 */
export class FakeShell {
  constructor(
    private readonly c: ShellFiles,
    private readonly env: Map<string, string>,
    private readonly io: ExecIo,
    /** The working directory: relative paths start here. */
    private readonly cwd: string,
    private readonly hooks: ShellHooks,
  ) {}

  private path(p: string): string {
    return normalize(posix.isAbsolute(p) ? p : posix.join(this.cwd, p));
  }

  async run(argv: string[]): Promise<ExecResult> {
    if (posix.basename(argv[0] ?? "") === "busybox" && argv[1] !== "sh") argv = argv.slice(1);
    const program = posix.basename(argv[0] ?? "");
    if ((program === "sh" || program === "busybox") && argv.includes("-c")) {
      const script = argv[argv.indexOf("-c") + 1] ?? "";
      return this.script(script);
    }
    const status = await this.command(argv.map((a, i) => (i === 0 ? posix.basename(a) : a)));
    return typeof status === "number" ? { exitCode: status, outOfMemory: false } : status;
  }

  private async script(script: string): Promise<ExecResult> {
    let status = 0;
    for (const [sep, text] of splitScript(script)) {
      if (sep === "&&" && status !== 0) continue;
      if (this.hooks.killed()) break;
      const words = tokenize(text).map((w) => (w.quoted === "'" ? w.text : this.expand(w.text)));
      if (words.length === 0) continue;
      const result = await this.command(words.map((w) => w));
      if (typeof result !== "number") return result;
      if (words[0] === "exit") return { exitCode: result, outOfMemory: false };
      status = result;
    }
    return { exitCode: status, outOfMemory: false };
  }

  private expand(text: string): string {
    return text.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_m, name: string) => this.env.get(name) ?? "");
  }

  private async command(words: string[]): Promise<number | ExecResult> {
    let out: (b: Buffer) => void = (b) => this.io.stdout(b);
    const args: string[] = [];
    for (let i = 0; i < words.length; i++) {
      const w = words[i];
      if (w === ">&2" || w === "1>&2") out = (b) => this.io.stderr(b);
      else if (w === ">" || w.startsWith(">")) {
        const file = this.path(w === ">" ? words[++i] : w.slice(1));
        this.c.files.set(file, Buffer.alloc(0));
        out = (b) => this.c.files.set(file, Buffer.concat([this.c.files.get(file) ?? Buffer.alloc(0), b]));
      } else args.push(w);
    }
    const [cmd, ...rest] = args;
    switch (cmd) {
      case "echo":
        out(Buffer.from(`${rest.join(" ")}\n`));
        return 0;
      case "printf":
        out(Buffer.from((rest[0] ?? "").replace(/\\n/g, "\n")));
        return 0;
      case "cat": {
        const data = this.c.files.get(this.path(rest[0] ?? ""));
        if (!data) {
          this.io.stderr(Buffer.from(`cat: can't open '${rest[0]}': No such file or directory\n`));
          return 1;
        }
        out(data);
        return 0;
      }
      case "sleep":
        await this.hooks.sleep(Number(rest[0] ?? 0) * 1000);
        return 0;
      case "exit":
        return Number(rest[0] ?? 0);
      case "pwd":
        out(Buffer.from(`${this.cwd}\n`));
        return 0;
      case "true":
        return 0;
      case "false":
        return 1;
      case "mkdir":
        for (const d of rest.filter((r) => r !== "-p")) mkdirs(this.c, this.path(d));
        return 0;
      case "trap":
        if (rest[rest.length - 1] === "TERM") this.hooks.ignoreTerm();
        return 0;
      case "chown":
        return 0;
      case "fake-oom":
        return { exitCode: 137, outOfMemory: true };
      default:
        this.io.stderr(Buffer.from(`sh: ${cmd}: not found\n`));
        return 127;
    }
  }
}

function splitScript(script: string): Array<[";" | "&&", string]> {
  const parts: Array<[";" | "&&", string]> = [];
  let sep: ";" | "&&" = ";";
  let current = "";
  let quote: string | undefined;
  for (let i = 0; i < script.length; i++) {
    const ch = script[i];
    if (quote) {
      if (ch === quote) quote = undefined;
      current += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      current += ch;
    } else if (ch === ";" || ch === "\n") {
      parts.push([sep, current]);
      sep = ";";
      current = "";
    } else if (ch === "&" && script[i + 1] === "&") {
      parts.push([sep, current]);
      sep = "&&";
      current = "";
      i++;
    } else current += ch;
  }
  parts.push([sep, current]);
  return parts.filter(([, t]) => t.trim());
}

function tokenize(text: string): Array<{ text: string; quoted?: string }> {
  const out: Array<{ text: string; quoted?: string }> = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[1] !== undefined) out.push({ text: m[1], quoted: "'" });
    else if (m[2] !== undefined) out.push({ text: m[2], quoted: '"' });
    else out.push({ text: m[3] });
  }
  return out;
}

export function normalize(path: string): string {
  const p = posix.normalize(path.startsWith("/") ? path : `/${path}`);
  return p.length > 1 ? p.replace(/\/$/, "") : p;
}

export function mkdirs(c: ShellFiles, dir: string): void {
  for (let d = normalize(dir); !c.dirs.has(d); d = posix.dirname(d)) c.dirs.add(d);
}

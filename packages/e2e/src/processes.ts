import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** A service process started from its main.ts, with its output in a log file. */
export class ServiceProcess {
  private child: ChildProcess;
  private exited: Promise<number | null>;
  readonly logFile: string;

  constructor(
    readonly name: string,
    readonly pkg: "bbs" | "auctioneer" | "cell",
    readonly args: string[],
    logDir: string,
    env: NodeJS.ProcessEnv = {},
    /** A command that runs the service, e.g. ["ip", "netns", "exec", "ns1"] (it must exec the rest). */
    wrapper: string[] = [],
  ) {
    this.logFile = join(logDir, `${name}.log`);
    const out = createWriteStream(this.logFile, { flags: "a" });
    const command = [...wrapper, process.execPath, "--import", "tsx", join(REPO_ROOT, `packages/${pkg}/src/main.ts`)];
    this.child = spawn(command[0]!, [...command.slice(1), ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, NODE_OPTIONS: "", DIEGO_LOG_LEVEL: process.env.DIEGO_LOG_LEVEL ?? "debug", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout!.pipe(out);
    this.child.stderr!.pipe(out);
    this.exited = new Promise((res) => this.child.once("exit", (code) => res(code)));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends a signal without waiting (SIGSTOP freezes the process, SIGCONT thaws it). */
  signal(signal: NodeJS.Signals): void {
    if (this.running) this.child.kill(signal);
  }

  /** Sends a signal and waits for the process to exit. */
  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 30_000): Promise<number | null> {
    if (!this.running) return this.child.exitCode;
    this.child.kill(signal);
    if (signal !== "SIGKILL") this.child.kill("SIGCONT");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  log(): string {
    try {
      return readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }
}

export function makeLogDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `diego-${prefix}-`));
}

import { readFile } from "node:fs/promises";
import type { CliIo } from "../../src/io.js";
import { runCli } from "../../src/cli.js";

export interface FakeIoOptions {
  env?: Record<string, string | undefined>;
  stdin?: string;
  /** Files the CLI may read, by path; other paths are read from disk. */
  files?: Record<string, string>;
  tty?: boolean;
}

/** A CliIo that captures output, so `diego` runs in-process in tests. */
export function fakeIo(options: FakeIoOptions = {}) {
  let stdout = "";
  let stderr = "";
  const interruptHandlers = new Set<() => void>();
  const io: CliIo = {
    stdout: { write: (t) => void (stdout += t), isTTY: options.tty ?? false, columns: 100 },
    stderr: { write: (t) => void (stderr += t), isTTY: options.tty ?? false, columns: 100 },
    env: options.env ?? {},
    readStdin: async () => options.stdin ?? "",
    readFile: async (path) => {
      if (options.files && path in options.files) return options.files[path];
      return readFile(path, "utf8");
    },
    onInterrupt: (handler) => {
      interruptHandlers.add(handler);
      return () => void interruptHandlers.delete(handler);
    },
  };
  return {
    io,
    stdout: () => stdout,
    stderr: () => stderr,
    /** Simulates Ctrl-C; false when nothing listens for it yet. */
    interrupt: () => {
      for (const h of [...interruptHandlers]) h();
      return interruptHandlers.size > 0;
    },
    listening: () => interruptHandlers.size > 0,
  };
}

/** Runs `diego args…` in-process against `address`; returns the exit code and the output. */
export async function diego(address: string, args: string[], options: FakeIoOptions = {}) {
  const f = fakeIo({ ...options, env: { DIEGO_BBS_ADDR: address, ...options.env } });
  const code = await runCli(args, f.io);
  return { code, stdout: f.stdout(), stderr: f.stderr() };
}

export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

import { readFile } from "node:fs/promises";

/**
 * Everything the CLI touches outside itself, so that tests run it in-process with captured output.
 * `processIo()` is the real one.
 */
export interface CliIo {
  stdout: { write(text: string): void; isTTY: boolean; columns?: number };
  stderr: { write(text: string): void; isTTY: boolean; columns?: number };
  env: Record<string, string | undefined>;
  /** The whole of standard input (for `desire -`). */
  readStdin(): Promise<string>;
  readFile(path: string): Promise<string>;
  /** Calls handler on each Ctrl-C (SIGINT) until the returned function is called. */
  onInterrupt(handler: () => void): () => void;
}

export function processIo(): CliIo {
  return {
    stdout: {
      write: (text) => void process.stdout.write(text),
      get isTTY() {
        return Boolean(process.stdout.isTTY);
      },
      get columns() {
        return process.stdout.columns;
      },
    },
    stderr: {
      write: (text) => void process.stderr.write(text),
      get isTTY() {
        return Boolean(process.stderr.isTTY);
      },
      get columns() {
        return process.stderr.columns;
      },
    },
    env: process.env,
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    },
    readFile: (path) => readFile(path, "utf8"),
    onInterrupt: (handler) => {
      process.on("SIGINT", handler);
      return () => void process.off("SIGINT", handler);
    },
  };
}

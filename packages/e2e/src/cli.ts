import { execFile } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "./processes.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `scripts/diego args…` as a user would, with the given environment and optional stdin. */
export function diego(args: string[], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(
      join(REPO_ROOT, "scripts/diego"),
      args,
      { env: { ...process.env, NODE_OPTIONS: "", ...env }, maxBuffer: 16 * 1024 * 1024, timeout: 300_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (stdin !== undefined) child.stdin?.end(stdin);
    else child.stdin?.end();
  });
}

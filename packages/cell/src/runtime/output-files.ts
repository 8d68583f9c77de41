import { randomBytes } from "node:crypto";

/**
 * Where a process's output goes in its container (docs/reliability.md, "Output files"): each process
 * started by the cell appends its stdout and stderr to two files of its own under this directory, which
 * the cell reads through the host's /proc/<container init>/root. The files are the container's: they go
 * with it, and count against its disk. Pure but for the random key.
 */
export const OUTPUT_ROOT = "/.diego-output";

const KEY = /^[0-9a-f]{24}$/;

export function newOutputKey(): string {
  return randomBytes(12).toString("hex");
}

export function outputPaths(key: string): { stdout: string; stderr: string } {
  return { stdout: `${OUTPUT_ROOT}/${key}.out`, stderr: `${OUTPUT_ROOT}/${key}.err` };
}

/**
 * The argv that runs `argv` with its stdout and stderr appended to the files of `key`, through the
 * helper busybox's shell (every container has it, whatever its image holds); with `nofile`, under that
 * RLIMIT_NOFILE. The shell redirects itself, then execs the program: the process is the program itself
 * (same pid, same exit status); the shell's own errors before that (ulimit) still go to the exec's streams.
 * The key is $0 of the script, so an exec's inspect tells where its output is.
 */
export function wrappedArgv(helper: string, argv: readonly string[], nofile: number, key: string): string[] {
  const { stdout, stderr } = outputPaths(key);
  const limit = nofile > 0 ? `ulimit -n ${Math.floor(nofile)} && ` : "";
  const script = `${limit}exec >>${stdout} 2>>${stderr} && exec "$@"`;
  return [helper, "sh", "-c", script, key, ...argv];
}

/** The output key of an exec from its arguments (after the entrypoint), undefined when it has none. */
export function outputKeyOf(args: readonly string[] | undefined): string | undefined {
  if (!args || args[0] !== "sh" || args[1] !== "-c" || !args[2]?.includes(`>>${OUTPUT_ROOT}/`)) return undefined;
  return KEY.test(args[3] ?? "") ? args[3] : undefined;
}

import { randomBytes } from "node:crypto";

/**
 * Where a process's output goes in its container (docs/reliability.md, "Output files"): each process
 * started by the cell appends its stdout and stderr to two files of its own under this directory, which
 * the cell reads through the process's own descriptors (never by this path from the host). The files
 * are the container's: they go with it, and count against its disk. Pure but for the random key.
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
 * A program named without a path is looked up in PATH here, as the engine would: the helper busybox's
 * shell would run its own applet of that name first (its `ls`, not the image's). Only `__diego_p` is
 * touched (in the shell, unset before the exec), so the program's environment is the exec's.
 */
const RESOLVE =
  'case "$1" in */*) ;; *) __diego_p=$(IFS=:; for d in $PATH; do if [ -f "$d/$1" ] && [ -x "$d/$1" ]; then echo "$d/$1"; break; fi; done); ' +
  'if [ -n "$__diego_p" ]; then shift; set -- "$__diego_p" "$@"; fi; unset __diego_p;; esac;';

/**
 * Once its output is redirected, the shell waits for a line on its stdin: the cell's "go" once it has
 * opened the two files through the shell's own descriptors (so that a program that exits at once is
 * still read through them), or "stop" (the step was stopped meanwhile: the program never runs, 143).
 * At the end of stdin (the cell gone) it goes on. The program gets /dev/null as its stdin.
 */
const HOLD = '{ read -r __diego_go; [ "$__diego_go" != stop ] || exit 143; exec </dev/null; unset __diego_go; }';

/**
 * What the shell writes on the exec's own stdout once its output is redirected, and nothing else ever
 * goes there: the cell knows from it that the process runs and its files are open, without asking the
 * engine again and again (the cell strips it; the program's output is in the files).
 */
export const REDIRECTED_MARK = "+";

/** The wrappers' first command: RLIMIT_NOFILE set to `nofile` (none when 0). */
function nofileLimit(nofile: number): string {
  return nofile > 0 ? `ulimit -n ${Math.floor(nofile)} && ` : "";
}

/**
 * The argv that runs `argv` with its stdout and stderr appended to the files of `key`, through the
 * helper busybox's shell (every container has it, whatever its image holds); with `nofile`, under that
 * RLIMIT_NOFILE. The shell redirects itself, says so on the exec's stdout (REDIRECTED_MARK), waits for
 * the cell (HOLD), finds the program (RESOLVE), then execs it: the process is the program itself (same
 * pid, same exit status); the shell's own errors before that (ulimit) still go to the exec's streams.
 * The key is $0 of the script, so an exec's inspect tells where its output is.
 */
export function wrappedArgv(helper: string, argv: readonly string[], nofile: number, key: string): string[] {
  const { stdout, stderr } = outputPaths(key);
  const limit = nofileLimit(nofile);
  // A cell gone meanwhile must not keep the program from running: no SIGPIPE, no error, for the mark.
  const mark = `{ trap '' PIPE; printf ${REDIRECTED_MARK} >&9 2>/dev/null; trap - PIPE; exec 9>&-; }`;
  const script = `${limit}exec 9>&1 >>${stdout} 2>>${stderr} && ${mark} && ${HOLD} && ${RESOLVE} exec "$@"`;
  return [helper, "sh", "-c", script, key, ...argv];
}

/** The output key of an exec from its arguments (after the entrypoint), undefined when it has none. */
export function outputKeyOf(args: readonly string[] | undefined): string | undefined {
  if (!args || args[0] !== "sh" || args[1] !== "-c" || !args[2]?.includes(`>>${OUTPUT_ROOT}/`)) return undefined;
  return KEY.test(args[3] ?? "") ? args[3] : undefined;
}

/**
 * The argv of a process the container's main process starts (main-process-files.ts, `run`): its output
 * is already in the key's files, so the shell only sets `nofile`, stops itself until the cell has opened
 * them through its descriptors (SIGCONT lets it go on; a SIGTERM sent meanwhile ends it, 143, before the
 * program ever runs), finds the program (RESOLVE) and execs it. The key is $0, as in wrappedArgv.
 */
export function heldArgv(helper: string, argv: readonly string[], nofile: number, key: string): string[] {
  return [helper, "sh", "-c", `${nofileLimit(nofile)}kill -STOP $$ && ${RESOLVE} exec "$@"`, key, ...argv];
}

/** Where a process the main process started leaves its exit status (main-process-files.ts). */
export function statusPath(key: string): string {
  return `${OUTPUT_ROOT}/${key}.status`;
}

/** A process the main process started, as a ProcessHandle id names it: `main:KEY:PID` (its pid in the container). */
export function mainProcessId(key: string, pid: number): string {
  return `main:${key}:${pid}`;
}

/** The key and container pid of a `main:KEY:PID` process id; undefined for any other (an exec id). */
export function parseMainProcessId(id: string): { key: string; pid: number } | undefined {
  const m = /^main:([0-9a-f]{24}):([1-9][0-9]{0,9})$/.exec(id);
  return m ? { key: m[1], pid: Number(m[2]) } : undefined;
}

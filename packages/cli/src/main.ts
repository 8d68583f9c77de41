// The `diego` command: node --import tsx packages/cli/src/main.ts (scripts/diego runs it from a checkout).
import { runCli } from "./cli.js";
import { processIo } from "./io.js";

runCli(process.argv.slice(2), processIo()).then(
  (code) => exit(code),
  (err: unknown) => {
    process.stderr.write(`diego: ${(err as Error)?.stack ?? String(err)}\n`);
    exit(6);
  },
);

/** Lets stdout drain (a pipe may still hold output), then exits even if a handle lingers. */
function exit(code: number): void {
  process.exitCode = code;
  setTimeout(() => process.exit(code), 2_000).unref();
}

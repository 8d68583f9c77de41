export { runCli } from "./cli.js";
export { processIo, type CliIo } from "./io.js";
export { ExitCode, exitCodeFor } from "./exit-codes.js";

import type { DiegoClient } from "@diego/client";
import type { CliIo } from "./io.js";

/** What every command gets: the I/O, the output mode and a client made on first use. */
export interface CommandContext {
  io: CliIo;
  /** --json: one JSON object per line on stdout. */
  json: boolean;
  /** The BBS address in use, for messages. */
  address: string;
  /** Mutual TLS is configured. */
  tls: boolean;
  client(): DiegoClient;
  now(): number;
  /** Writes a line to stdout (a JSON line with --json); control characters are escaped. */
  out(line: string): void;
  /** Writes text (a table, a task's fields) to stdout; control characters but newline and tab are escaped. */
  write(text: string): void;
  /** Writes a task's own output (its result) to stdout: escaped on a terminal, as it is into a pipe or file. */
  data(text: string): void;
  /** Writes text to stderr; control characters but newline and tab are escaped. */
  err(text: string): void;
}

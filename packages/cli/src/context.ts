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
  /** Writes a line to stdout. */
  out(line: string): void;
  /** Writes text to stderr as it is. */
  err(text: string): void;
}

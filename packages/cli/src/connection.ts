import { DEFAULT_BBS_ADDRESS, DiegoClient, type DiegoClientOptions } from "@diego/client";
import { DiegoError, invalidArgument, type FieldViolation } from "@diego/models";
import { parseDurationOption } from "./duration-option.js";

/** The global options every command shares (flags win over the environment). */
export interface GlobalOptions {
  bbsAddress?: string;
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  timeout?: string;
  json?: boolean;
}

export const ENV = {
  bbsAddress: "DIEGO_BBS_ADDR",
  caFile: "DIEGO_TLS_CA_FILE",
  certFile: "DIEGO_TLS_CERT_FILE",
  keyFile: "DIEGO_TLS_KEY_FILE",
} as const;

/** Flags and environment → client options; INVALID_ARGUMENT naming the flag when they do not fit together. */
export function clientOptionsFrom(opts: GlobalOptions, env: Record<string, string | undefined>): DiegoClientOptions {
  const pick = (key: keyof typeof ENV) => (opts[key] as string | undefined) || env[ENV[key]] || undefined;
  const address = pick("bbsAddress") ?? DEFAULT_BBS_ADDRESS;
  const violations: FieldViolation[] = [];
  // Several BBS addresses, comma-separated, are tried in turn (the client fails over between them).
  const addresses = address.split(",");
  if (!addresses.every((a) => /^[^\s,]+:\d+$/.test(a.trim())))
    violations.push({
      field: "--bbs-address",
      message: `must be host:port or several, comma-separated (got ${JSON.stringify(address)})`,
    });
  const tls = { caFile: pick("caFile"), certFile: pick("certFile"), keyFile: pick("keyFile") };
  const given = Object.values(tls).filter(Boolean).length;
  if (given > 0 && given < 3) {
    for (const [key, flag] of [
      ["caFile", "--ca-file"],
      ["certFile", "--cert-file"],
      ["keyFile", "--key-file"],
    ] as const) {
      if (!tls[key])
        violations.push({
          field: flag,
          message: `is required for mutual TLS (or ${ENV[key]}); give all three of --ca-file, --cert-file, --key-file or none`,
        });
    }
  }
  let timeoutMs = 10_000;
  if (opts.timeout !== undefined) {
    try {
      timeoutMs = parseDurationOption("--timeout", opts.timeout, "500ms, 10s, 1m");
    } catch (err) {
      violations.push(...(err as DiegoError).violations);
    }
  }
  if (violations.length) throw invalidArgument(violations);
  return {
    address,
    timeoutMs,
    tls: given === 3 ? { caFile: tls.caFile!, certFile: tls.certFile!, keyFile: tls.keyFile! } : undefined,
  };
}

/** A client, or INVALID_ARGUMENT when a TLS file cannot be read. */
export function connect(options: DiegoClientOptions): DiegoClient {
  try {
    return new DiegoClient(options);
  } catch (err) {
    if (err instanceof DiegoError) throw err;
    throw new DiegoError("INVALID_ARGUMENT", (err as Error).message);
  }
}

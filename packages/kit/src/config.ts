import { readFileSync } from "node:fs";
import stripJsonComments from "strip-json-comments";
import { parseArgs } from "node:util";
import { parseDuration } from "@diego/models";
import { z } from "zod";
import type { TlsFiles } from "./grpc/credentials.js";

/**
 * Service configuration from flags, environment and an optional JSON file (in that order of
 * precedence), validated at start. Every setting is declared once with its type, default and
 * description; `--help` prints them all.
 */
type Kind = "string" | "integer" | "number" | "boolean" | "duration" | "list" | "map";

type ValueOf<K extends Kind> = K extends "string"
  ? string
  : K extends "integer" | "number" | "duration"
    ? number
    : K extends "boolean"
      ? boolean
      : K extends "list"
        ? string[]
        : Record<string, string>;

export interface Setting<K extends Kind = Kind> {
  kind: K;
  description: string;
  /** Omit for a required setting. Durations are in milliseconds. */
  default?: ValueOf<K>;
  /** Extra rule, e.g. z.number().min(1). */
  check?: z.ZodType<ValueOf<K>>;
  /** Omitted from --help output of defaults (e.g. secrets). */
  secret?: boolean;
  /** May be left unset (no default): the value is then undefined. */
  optional?: boolean;
}

export type SettingsSpec = Record<string, Setting>;
export type ConfigOf<S extends SettingsSpec> = {
  [K in keyof S]: S[K] extends Setting<infer T>
    ? ValueOf<T> | (S[K] extends { optional: true } ? undefined : never)
    : never;
};

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export function setting<K extends Kind, E extends Omit<Setting<K>, "kind" | "description"> = Record<never, never>>(
  kind: K,
  description: string,
  extra?: E,
): Setting<K> & E {
  return { kind, description, ...(extra as E) };
}

/** listenAddress → --listen-address and DIEGO_BBS_LISTEN_ADDRESS (for envPrefix DIEGO_BBS). */
export function flagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function envName(prefix: string, key: string): string {
  return `${prefix}_${flagName(key).replace(/-/g, "_").toUpperCase()}`;
}

export interface LoadOptions {
  /** e.g. DIEGO_BBS */
  envPrefix: string;
  argv?: string[];
  env?: NodeJS.ProcessEnv;
  /** Program name and one-line summary for --help. */
  program: string;
  summary: string;
  /** Checks across settings once they are read (e.g. all three TLS files or none); throw to refuse. */
  check?: (config: never) => unknown;
}

export type LoadResult<S extends SettingsSpec> = { help: string } | { config: ConfigOf<S> };

/** Reads and validates the configuration; `{help}` when --help was asked for. Throws ConfigError naming the bad setting. */
export function loadConfig<S extends SettingsSpec>(spec: S, options: LoadOptions): LoadResult<S> {
  const argv = options.argv ?? process.argv.slice(2);
  const env = options.env ?? process.env;
  const parseOptions: Record<string, { type: "string" | "boolean" }> = {
    help: { type: "boolean" },
    config: { type: "string" },
  };
  for (const [key, s] of Object.entries(spec))
    parseOptions[flagName(key)] = { type: s.kind === "boolean" ? "boolean" : "string" };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: parseOptions,
      strict: true,
      allowPositionals: false,
      allowNegative: true,
    });
  } catch (err) {
    throw new ConfigError(`${(err as Error).message}; see --help`);
  }
  const flags = parsed.values as Record<string, string | boolean | undefined>;
  if (flags.help) return { help: helpText(spec, options) };

  const configFile = (flags.config as string | undefined) ?? env[`${options.envPrefix}_CONFIG`];
  const fromFile = configFile ? readConfigFile(configFile) : {};
  const unknown = Object.keys(fromFile).filter((k) => !(k in spec));
  if (unknown.length)
    throw new ConfigError(`unknown setting ${unknown.map((k) => JSON.stringify(k)).join(", ")} in ${configFile}`);

  const config: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec)) {
    const flag = flags[flagName(key)];
    const envValue = env[envName(options.envPrefix, key)];
    const [raw, source] =
      flag !== undefined
        ? [flag, `--${flagName(key)}`]
        : envValue !== undefined
          ? [envValue, envName(options.envPrefix, key)]
          : // null in the file leaves the setting at its default (the packaged template writes unset ones so).
            key in fromFile && fromFile[key] !== null
            ? [fromFile[key], `${key} in ${configFile}`]
            : [undefined, ""];
    if (raw === undefined) {
      if (s.default === undefined && !s.optional) {
        throw new ConfigError(`setting --${flagName(key)} (${envName(options.envPrefix, key)}) is required`);
      }
      config[key] = s.default;
      continue;
    }
    config[key] = convert(s, raw, source);
  }
  if (options.check) {
    try {
      options.check(config as never);
    } catch (err) {
      throw new ConfigError((err as Error).message);
    }
  }
  return { config: config as ConfigOf<S> };
}

/** A whole configuration from the defaults and the given values (undefined values keep the default): for in-process use and tests. */
export function configWithDefaults<S extends SettingsSpec>(spec: S, values: Partial<ConfigOf<S>> = {}): ConfigOf<S> {
  const config: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(spec)) config[key] = s.default;
  for (const [key, value] of Object.entries(values)) if (value !== undefined) config[key] = value;
  return config as ConfigOf<S>;
}

/** The mutual TLS settings every service has. */
export const tlsSettings = {
  tlsCaFile: setting(
    "string",
    "CA file for mutual TLS (with --tls-cert-file and --tls-key-file: on this server and every client it makes).",
    { optional: true },
  ),
  tlsCertFile: setting("string", "Certificate file for mutual TLS.", { optional: true }),
  tlsKeyFile: setting("string", "Key file for mutual TLS.", { optional: true }),
  insecure: setting("boolean", "Allow plaintext gRPC on an address that is not loopback (logs a warning).", {
    default: false,
  }),
};

/** The egress policy's operator lists (docs/security.md), for services that make requests on a user's behalf. */
export const egressSettings = {
  egressDenyCidrs: setting("list", "CIDRs that callbacks, downloads and uploads may never reach (checked first).", {
    default: [],
  }),
  egressAllowCidrs: setting(
    "list",
    "CIDRs allowed although a default-denied range (loopback, link-local, unspecified, multicast) holds them.",
    { default: [] },
  ),
};

/** The TLS files of a configuration: all three, or none (plaintext). Throws naming the missing ones. */
export function tlsFilesOf(config: {
  tlsCaFile?: string;
  tlsCertFile?: string;
  tlsKeyFile?: string;
}): TlsFiles | undefined {
  const { tlsCaFile, tlsCertFile, tlsKeyFile } = config;
  if (!tlsCaFile && !tlsCertFile && !tlsKeyFile) return undefined;
  const missing = (
    [
      ["--tls-ca-file", tlsCaFile],
      ["--tls-cert-file", tlsCertFile],
      ["--tls-key-file", tlsKeyFile],
    ] as const
  )
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (missing.length) throw new ConfigError(`mutual TLS needs all three files; missing ${missing.join(", ")}`);
  return { caFile: tlsCaFile!, certFile: tlsCertFile!, keyFile: tlsKeyFile! };
}

/** Loads the configuration or prints help / the error and exits: for a service's main.ts. */
export function loadConfigOrExit<S extends SettingsSpec>(spec: S, options: LoadOptions): ConfigOf<S> {
  try {
    const result = loadConfig(spec, options);
    if ("help" in result) {
      process.stdout.write(result.help);
      process.exit(0);
    }
    return result.config;
  } catch (err) {
    process.stderr.write(`${options.program}: ${(err as Error).message}\n`);
    process.exit(2);
  }
}

/**
 * A configuration file that documents every setting of `spec`: each with its description, flag,
 * environment variable and default, as JSON with comments (which `--config` reads). Settings in
 * `values` are set; the others are left commented out at their defaults.
 */
export function configTemplate<S extends SettingsSpec>(
  spec: S,
  options: { program: string; summary: string; envPrefix: string; values?: Partial<Record<keyof S, unknown>> },
): string {
  const lines = [`// ${options.program}: ${options.summary}`];
  lines.push("// Every setting may also be given as a flag or an environment variable, which win over this file.");
  lines.push("{");
  const keys = Object.keys(spec);
  const values: Record<string, unknown> = options.values ?? {};
  keys.forEach((key, i) => {
    const s = spec[key]!;
    const set = key in values;
    const value = set ? values[key] : s.secret ? undefined : s.default;
    lines.push("");
    lines.push(`  // ${s.description}`);
    lines.push(`  // --${flagName(key)}, ${envName(options.envPrefix, key)}; default ${describeDefault(s)}`);
    const entry = `"${key}": ${JSON.stringify(value ?? null)}${i < keys.length - 1 ? "," : ""}`;
    lines.push(set ? `  ${entry}` : `  // ${entry}`);
  });
  lines.push("}");
  return lines.join("\n") + "\n";
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`);
  }
  try {
    // The file may carry // and /* */ comments (the packaged configuration documents every setting).
    const json = JSON.parse(stripJsonComments(text, { trailingCommas: true })) as unknown;
    if (typeof json !== "object" || json === null || Array.isArray(json)) throw new Error("not a JSON object");
    return json as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
  }
}

function convert(s: Setting, raw: unknown, source: string): unknown {
  const fail = (why: string): never => {
    throw new ConfigError(`${source}: ${why} (got ${JSON.stringify(raw)})`);
  };
  let value: unknown;
  const text = typeof raw === "string" ? raw.trim() : raw;
  switch (s.kind) {
    case "string":
      value = typeof text === "string" ? text : fail("must be a string");
      break;
    case "integer":
    case "number": {
      const n = typeof text === "number" ? text : typeof text === "string" && text !== "" ? Number(text) : NaN;
      if (!Number.isFinite(n) || (s.kind === "integer" && !Number.isInteger(n)))
        fail(`must be ${s.kind === "integer" ? "an integer" : "a number"}`);
      value = n;
      break;
    }
    case "boolean":
      if (typeof text === "boolean") value = text;
      else if (text === "true" || text === "1") value = true;
      else if (text === "false" || text === "0") value = false;
      else fail("must be true or false");
      break;
    case "duration":
      if (typeof text === "number") value = text;
      else {
        try {
          value = parseDuration(String(text));
        } catch {
          fail("must be a duration such as 500ms, 30s, 2m");
        }
      }
      break;
    case "list":
      value = Array.isArray(text)
        ? text.map(String)
        : String(text)
            .split(",")
            .map((x) => x.trim())
            .filter(Boolean);
      break;
    case "map":
      if (typeof text === "object" && text !== null && !Array.isArray(text)) value = text;
      else {
        const entries = String(text)
          .split(",")
          .map((x) => x.trim())
          .filter(Boolean);
        const map: Record<string, string> = {};
        for (const entry of entries) {
          const eq = entry.indexOf("=");
          if (eq <= 0) fail("must be a comma-separated list of NAME=VALUE");
          map[entry.slice(0, eq)] = entry.slice(eq + 1);
        }
        value = map;
      }
      break;
  }
  if (s.check) {
    const result = s.check.safeParse(value);
    if (!result.success) fail(result.error.issues.map((i) => i.message).join("; "));
    return result.data;
  }
  return value;
}

function helpText(spec: SettingsSpec, options: LoadOptions): string {
  const lines = [
    `Usage: ${options.program} [--config FILE] [settings]`,
    "",
    options.summary,
    "",
    "Settings (flag, environment variable, default):",
  ];
  for (const [key, s] of Object.entries(spec)) {
    lines.push(
      `  --${flagName(key)} <${s.kind}>`,
      `      ${s.description}`,
      `      env ${envName(options.envPrefix, key)}; default ${describeDefault(s)}`,
    );
  }
  lines.push(
    "",
    `A JSON config file (--config or ${options.envPrefix}_CONFIG) may set any setting by its camelCase name.`,
    "Flags win over the environment, the environment over the file.",
    "",
  );
  return lines.join("\n");
}

function describeDefault(s: Setting): string {
  return s.default === undefined ? (s.optional ? "unset" : "required") : s.secret ? "(hidden)" : formatDefault(s);
}

function formatDefault(s: Setting): string {
  if (s.kind === "duration") return `${s.default}ms`;
  if (s.kind === "map")
    return (
      Object.entries(s.default as Record<string, string>)
        .map(([k, v]) => `${k}=${v}`)
        .join(",") || "(none)"
    );
  if (s.kind === "list") return (s.default as string[]).join(",") || "(none)";
  return JSON.stringify(s.default);
}

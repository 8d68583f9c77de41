import { hostname } from "node:os";
import { configWithDefaults, egressSettings, setting, tlsSettings, type ConfigOf, type SettingsSpec } from "@diego/kit";
import { z } from "zod";

const positive = z.number().positive();
const atLeastOne = z.number().int().min(1);

/** Every setting of the BBS: flag --kebab-name, env DIEGO_BBS_SNAKE_NAME, or a camelCase key in --config FILE. */
export const bbsSettings = {
  listenAddress: setting("string", "gRPC listen address (host:port; port 0 picks a free one)", {
    default: "127.0.0.1:8889",
  }),
  statusAddress: setting("string", "HTTP address of /metrics, /healthz and /readyz", { default: "127.0.0.1:8890" }),
  consoleAddress: setting(
    "string",
    "host:port of the web console, e.g. 127.0.0.1:8895 (HTTPS with a client certificate when TLS is on; plaintext only on loopback); empty: no console",
    { default: "" },
  ),
  consoleAllowCancel: setting(
    "boolean",
    "let the console cancel tasks (where the caller may cancel them); read-only otherwise",
    {
      default: false,
    },
  ),
  store: setting("string", "where tasks live: etcd, or memory (one instance, nothing kept; for tests and demos)", {
    default: "etcd",
    check: z.enum(["etcd", "memory"]),
  }),
  etcdEndpoints: setting("list", "etcd client URLs, comma-separated", { default: ["http://127.0.0.1:2379"] }),
  etcdPrefix: setting("string", "prefix of every etcd key of this BBS (instances that share it share the state)", {
    default: "/diego",
  }),
  etcdCaFile: setting("string", "CA of etcd's TLS certificate (enables TLS to etcd)", { optional: true }),
  etcdCertFile: setting("string", "client certificate for etcd", { optional: true }),
  etcdKeyFile: setting("string", "client key for etcd", { optional: true }),
  etcdRequestTimeout: setting("duration", "deadline of one etcd request", { default: 5_000, check: positive }),
  instanceId: setting("string", "this instance's name in leader election", { default: `${hostname()}-${process.pid}` }),
  auctioneerAddress: setting("string", "auctioneer gRPC address; unset: the value of the `auctioneer` lock", {
    optional: true,
  }),
  ...tlsSettings,
  ...egressSettings,
  encryptionKeys: setting(
    "map",
    "Keys that encrypt image_password and secret_env at rest, as ID=PASSPHRASE, comma-separated; without one an etcd BBS refuses tasks with secrets.",
    { default: {}, secret: true },
  ),
  activeKeyId: setting("string", "The id of the encryption key that new writes use (the others still read).", {
    optional: true,
  }),
  rewriteTasks: setting("boolean", "At start, rewrite every stored task that carries secrets under the active key.", {
    default: false,
  }),
  defaultMemoryMb: setting(
    "integer",
    "memory_mb of a task that gives 0 (0: none, the cell's whole share, nothing reserved)",
    {
      default: 0,
      check: z.number().int().min(0),
    },
  ),
  maxMemoryMb: setting("integer", "largest memory_mb a task may ask for (0: only the system's limit)", {
    default: 0,
    check: z.number().int().min(0),
  }),
  defaultDiskMb: setting("integer", "disk_mb of a task that gives 0 (0: none)", {
    default: 0,
    check: z.number().int().min(0),
  }),
  maxDiskMb: setting("integer", "largest disk_mb a task may ask for (0: only the system's limit)", {
    default: 0,
    check: z.number().int().min(0),
  }),
  clientDomains: setting(
    "map",
    "Limit client identities to domains, as CLIENT=DOMAIN|DOMAIN, comma-separated (they desire, read, watch and cancel only there); a client not named is not limited.",
    { default: {} },
  ),
  privilegedClients: setting(
    "list",
    "The only client identities that may desire privileged tasks, comma-separated; unset: any client (the cells still decide with --allow-privileged).",
    { optional: true },
  ),
  logLevel: setting("string", "log level (trace, debug, info, warn, error)", { default: "info" }),
  convergeRepeatInterval: setting("duration", "time between convergence passes", { default: 30_000, check: positive }),
  kickTaskDuration: setting(
    "duration",
    "RESOLVING this long → back to COMPLETED; COMPLETED this long → callback again",
    {
      default: 30_000,
      check: positive,
    },
  ),
  expirePendingTaskDuration: setting("duration", "PENDING this long → failed `not started within time limit`", {
    default: 30 * 60_000,
    check: positive,
  }),
  expireCompletedTaskDuration: setting("duration", "unresolved this long after completing → deleted", {
    default: 2 * 60_000,
    check: positive,
  }),
  maxTaskRetries: setting("integer", "rejections after which a task fails instead of going back to PENDING", {
    default: 3,
    check: z.number().int().min(0),
  }),
  taskCallbackWorkers: setting("integer", "completion callbacks delivered at once", {
    default: 1000,
    check: atLeastOne,
  }),
  callbackTimeout: setting("duration", "deadline of one completion callback POST", {
    default: 10_000,
    check: positive,
  }),
  communicationTimeout: setting("duration", "deadline of calls to the auctioneer and to cells", {
    default: 10_000,
    check: positive,
  }),
  convergenceWorkers: setting("integer", "convergence transitions in flight at once", {
    default: 20,
    check: atLeastOne,
  }),
  cellLossHoldMax: setting(
    "duration",
    "longest wait for heartbeats to resume when most cells go silent at once (the BBS may be the one cut off) before their tasks fail",
    { default: 60_000, check: positive },
  ),
  cellPresenceTtl: setting(
    "duration",
    "presence TTL assumed for cells until their records say (the cells' heartbeat TTL)",
    {
      default: 15_000,
      check: positive,
    },
  ),
  lockTtl: setting("duration", "lease TTL of the convergence leader (another instance takes over within it)", {
    default: 15_000,
    check: z.number().min(1_000),
  }),
  lockRetryInterval: setting("duration", "pause between leader election attempts after an error", {
    default: 5_000,
    check: positive,
  }),
  watchBufferSize: setting("integer", "events a WatchTasks subscriber may fall behind before it is cut off", {
    default: 1024,
    check: atLeastOne,
  }),
  watchBufferBytes: setting("integer", "encoded bytes a WatchTasks subscriber may fall behind before it is cut off", {
    default: 8 * 1024 * 1024,
    check: atLeastOne,
  }),
  watchHistorySize: setting("integer", "events kept so that a WatchTasks stream can resume (resume_token)", {
    default: 10_000,
    check: atLeastOne,
  }),
  watchHistoryBytes: setting("integer", "encoded bytes of the events kept for resuming", {
    default: 64 * 1024 * 1024,
    check: atLeastOne,
  }),
  maxWatchersPerCaller: setting("integer", "concurrent WatchTasks streams of one caller (certificate, or host)", {
    default: 256,
    check: atLeastOne,
  }),
  grpcMaxReceiveBytes: setting("integer", "largest gRPC request taken, in bytes (larger: RESOURCE_EXHAUSTED)", {
    default: 4 * 1024 * 1024,
    check: z
      .number()
      .int()
      .min(64 * 1024),
  }),
  writeBatchSize: setting("integer", "most task writes grouped in one etcd transaction (at most 128)", {
    default: 128,
    check: z.number().int().min(1).max(128),
  }),
  writeConcurrency: setting(
    "integer",
    "etcd write transactions in flight at once (writes arriving meanwhile wait and go together)",
    {
      default: 4,
      check: atLeastOne,
    },
  ),
  maxCasAttempts: setting("integer", "compare-and-swap attempts of one transition before ABORTED", {
    default: 8,
    check: atLeastOne,
  }),
} satisfies SettingsSpec;

export type BbsConfig = ConfigOf<typeof bbsSettings>;

/** The configuration with every default filled in, overridden by `overrides`. */
export function bbsConfig(overrides: Partial<BbsConfig> = {}): BbsConfig {
  return configWithDefaults(bbsSettings, overrides);
}

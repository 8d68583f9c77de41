/**
 * Every limit the system puts on what a client may submit, in one place; each error names its
 * field and the limit. docs/limits.md lists them all with their reasons.
 */
export const LIMITS = {
  /** The encoded TaskCreateRequest; the store takes larger values (room for result, outcome, log tail). */
  encodedTaskBytes: 256 * 1024,
  /** Identifiers and names: task_guid, log_guid, domain, log_source, placement tags, label keys, user, cache_key. */
  nameChars: 255,
  annotationBytes: 10 * 1024,
  /** Paths in the container: run path and dir, result_file, download to, upload from. */
  pathBytes: 4096,
  urlBytes: 8192,
  rootFsBytes: 4096,
  credentialBytes: 4096,
  /** Variables in one env list (the task's, secret_env, or a run action's). */
  envVars: 1024,
  envNameBytes: 1024,
  envValueBytes: 64 * 1024,
  args: 4096,
  argBytes: 64 * 1024,
  /** Actions in one tree, counting every node: bounds the execs one task can start. */
  actions: 1024,
  /** Actions running at once: the children of every parallel and codependent action, summed along a tree. */
  parallelActions: 64,
  progressMessageBytes: 4096,
  checksumBytes: 256,
  placementTags: 64,
  labels: 64,
  labelValueBytes: 1024,
  /** Node's timers fire at once above 2^31−1 ms. */
  timeoutMs: 2 ** 31 - 1,
  /** Linux's default fs.nr_open. */
  nofile: 1_048_576,
  /** Linux's largest pid_max. */
  maxPids: 4_194_304,
  memoryMb: 1_048_576,
  diskMb: 16_777_216,
  /** Heartbeat and lock TTLs. */
  ttlMs: 3_600_000,
  lockKeyBytes: 255,
  lockOwnerBytes: 255,
  lockValueBytes: 4096,
  /** Lists in a cell's presence (stacks, root_fs providers, placement tags). */
  presenceListItems: 64,
  /** ListTasks page_size when none is given (0). */
  listPageSizeDefault: 500,
  /** The largest ListTasks page_size. */
  listPageSizeMax: 5000,
  /** Encoded tasks in one ListTasks page (a page always holds at least one task): well under gRPC's usual 4 MiB receive limit. */
  listPageBytes: 2 * 1024 * 1024,
} as const;

/** C0, DEL and C1 control characters: never in identifiers or names (they spoof terminals and logs). */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

export function byteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

import type { JsonValue } from "@bufbuild/protobuf";

/**
 * One invalid TaskCreateRequest per rule of docs/contract.md's field table, as the JSON a user writes, with the
 * field the error must name. Each is a valid base request with one change.
 */
export const VALID_REQUEST: Record<string, JsonValue> = {
  task_guid: "valid-guid",
  domain: "invalid-requests",
  root_fs: "docker:///diego/busybox",
  action: { run: { path: "/bin/true" } },
};

export interface InvalidCase {
  name: string;
  change: Record<string, JsonValue>;
  /** Fields to drop from the base request. */
  drop?: string[];
  field: string;
}

export const INVALID_CASES: InvalidCase[] = [
  { name: "task_guid missing", change: {}, drop: ["task_guid"], field: "task_guid" },
  { name: "task_guid with a space", change: { task_guid: "bad guid" }, field: "task_guid" },
  { name: "task_guid with a slash", change: { task_guid: "a/b" }, field: "task_guid" },
  { name: "domain missing", change: {}, drop: ["domain"], field: "domain" },
  { name: "root_fs missing", change: {}, drop: ["root_fs"], field: "root_fs" },
  { name: "root_fs with an unknown scheme", change: { root_fs: "ftp://host/image" }, field: "root_fs" },
  { name: "root_fs docker without an image", change: { root_fs: "docker://" }, field: "root_fs" },
  { name: "root_fs preloaded without a name", change: { root_fs: "preloaded:" }, field: "root_fs" },
  { name: "env without a name", change: { env: [{ name: "", value: "x" }] }, field: "env[0].name" },
  { name: "cpu_weight above 100", change: { cpu_weight: 101 }, field: "cpu_weight" },
  { name: "negative disk_mb", change: { disk_mb: -1 }, field: "disk_mb" },
  { name: "negative memory_mb", change: { memory_mb: -1 }, field: "memory_mb" },
  { name: "action missing", change: {}, drop: ["action"], field: "action" },
  { name: "action with no type", change: { action: {} }, field: "action" },
  { name: "run without a path", change: { action: { run: { args: ["x"] } } }, field: "action.run.path" },
  {
    name: "timeout of 0 ms",
    change: { action: { timeout: { action: { run: { path: "/bin/true" } }, timeout_ms: "0" } } },
    field: "action.timeout.timeout_ms",
  },
  { name: "serial with no actions", change: { action: { serial: { actions: [] } } }, field: "action.serial.actions" },
  {
    name: "nested bad action",
    change: { action: { serial: { actions: [{ run: { path: "/bin/true" } }, { download: { to: "/tmp" } }] } } },
    field: "action.serial.actions[1].download.from",
  },
  { name: "relative result_file", change: { result_file: "tmp/result" }, field: "result_file" },
  {
    name: "callback URL that is not a URL",
    change: { completion_callback_url: "not a url" },
    field: "completion_callback_url",
  },
  {
    name: "callback URL that is not http",
    change: { completion_callback_url: "ftp://example.com/x" },
    field: "completion_callback_url",
  },
  { name: "annotation over 10 KiB", change: { annotation: "x".repeat(10 * 1024 + 1) }, field: "annotation" },
  { name: "empty placement tag", change: { placement_tags: [""] }, field: "placement_tags[0]" },
  { name: "negative max_pids", change: { max_pids: -1 }, field: "max_pids" },
  { name: "image_username without image_password", change: { image_username: "u" }, field: "image_password" },
  { name: "image_password without image_username", change: { image_password: "p" }, field: "image_username" },
];

export function invalidRequestJson(c: InvalidCase, guid: string): Record<string, JsonValue> {
  const json: Record<string, JsonValue> = { ...VALID_REQUEST, task_guid: guid, ...c.change };
  for (const f of c.drop ?? []) delete json[f];
  return json;
}

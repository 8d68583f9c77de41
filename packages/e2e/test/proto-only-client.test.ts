import { join } from "node:path";
import {
  credentials,
  loadPackageDefinition,
  type Client,
  type GrpcObject,
  type ServiceClientConstructor,
  type ServiceError,
} from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { Cluster, containersOf, eventually, REPO_ROOT, uniqueGuid } from "../src/index.js";

// A client built from proto/ alone (no generated code of ours): a task through
// plain grpc-js + proto-loader, with the JSON field names of docs/contract.md.
let cluster: Cluster;
let client: Client &
  Record<string, (req: object, cb: (err: ServiceError | null, res: Record<string, unknown>) => void) => void>;

beforeAll(async () => {
  cluster = await Cluster.start();
  const definition = loadSync(["diego/bbs/v1/bbs.proto"], {
    includeDirs: [join(REPO_ROOT, "proto")],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = loadPackageDefinition(definition) as unknown as { diego: { bbs: { v1: GrpcObject } } };
  const TaskService = pkg.diego.bbs.v1.TaskService as ServiceClientConstructor;
  client = new TaskService(cluster.bbsAddress, credentials.createInsecure()) as never;
}, 180_000);

afterAll(async () => {
  client?.close();
  await cluster?.stop();
});

function call(method: string, req: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => client[method](req, (err, res) => (err ? reject(err) : resolve(res))));
}

test("desire, poll, resolve and delete the issue's task", async () => {
  const guid = uniqueGuid("proto-only");
  await call("DesireTask", {
    task_guid: guid,
    domain: "demo",
    root_fs: "docker:///diego/busybox",
    env: [{ name: "GREETING", value: "hello" }],
    memory_mb: 64,
    disk_mb: 64,
    cpu_weight: 50,
    action: { run: { path: "/bin/sh", args: ["-c", "echo $GREETING; printf 42 > /tmp/result"] } },
    result_file: "/tmp/result",
    log_guid: guid,
    log_source: "DEMO",
    annotation: "first task",
  });
  const task = await eventually(
    "COMPLETED",
    async () => {
      const t = await call("GetTask", { task_guid: guid });
      return t.state === "COMPLETED" ? t : undefined;
    },
    120_000,
  );
  expect(task).toMatchObject({ task_guid: guid, failed: false, result: "42", annotation: "first task" });
  expect(["cell-1", "cell-2"]).toContain(task.cell_id);
  expect(String(task.created_at)).toMatch(/^\d{19}$/);
  await call("ResolvingTask", { task_guid: guid });
  await call("DeleteTask", { task_guid: guid });
  await expect(call("GetTask", { task_guid: guid })).rejects.toMatchObject({ code: 5 });
  await eventually("no container left", async () => (await containersOf(guid)).length === 0, 60_000);
});

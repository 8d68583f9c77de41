import { create } from "@bufbuild/protobuf";
import { TaskSchema, TaskService, TaskState, type ListTasksRequest } from "@diego/proto";
import { DiegoError, invalidArgument } from "@diego/models";
import { Client, credentials, status as Status } from "@grpc/grpc-js";
import { pino } from "pino";
import { createClient } from "../src/grpc/client.js";
import { GrpcServer } from "../src/grpc/server.js";
import type { ServiceImpl } from "../src/grpc/types.js";

const logger = pino({ level: "silent" });
const unimplemented = () => {
  throw new DiegoError("UNIMPLEMENTED", "not here");
};

const impl: ServiceImpl<(typeof TaskService)["method"]> = {
  desireTask: (req) => {
    if (!req.taskGuid) throw invalidArgument([{ field: "task_guid", message: "is required" }]);
    return { task: { taskGuid: req.taskGuid, state: TaskState.PENDING, createdAt: 5n } };
  },
  getTask: () => {
    throw new Error("boom");
  },
  listTasks: (req: ListTasksRequest) => ({ tasks: [create(TaskSchema, { taskGuid: "a", domain: req.domain })] }),
  cancelTask: unimplemented,
  resolvingTask: unimplemented,
  deleteTask: unimplemented,
  taskBatch: unimplemented,
  watchTasks: async function* (req, ctx) {
    for (let i = 0; i < 1000 && !ctx.signal.aborted; i++) {
      yield { event: { case: "created", value: { task: { taskGuid: `t${i}`, domain: req.domain } } } };
    }
  },
  taskLogs: async function* () {
    yield { message: "one" };
    throw new DiegoError("NOT_FOUND", "task gone");
  },
};

let server: GrpcServer;
let address: string;
const observed: string[] = [];

beforeAll(async () => {
  server = new GrpcServer({ logger, observe: (method, code) => observed.push(`${method} ${code}`) });
  server.add(TaskService, impl);
  const port = await server.listen("127.0.0.1:0");
  address = `127.0.0.1:${port}`;
});

afterAll(() => server.shutdown(100));

test("unary round trip with bigint fields", async () => {
  const client = createClient(TaskService, address);
  const res = await client.desireTask({ taskGuid: "x" });
  expect(res.task?.taskGuid).toBe("x");
  expect(res.task?.createdAt).toBe(5n);
  client.close();
});

test("a DiegoError keeps its code and field violations across the wire", async () => {
  const client = createClient(TaskService, address);
  const err = await client.desireTask({}).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(DiegoError);
  expect(err).toMatchObject({ code: "INVALID_ARGUMENT", violations: [{ field: "task_guid", message: "is required" }] });
  expect((err as Error).message).toContain("task_guid");
  client.close();
});

test("an unexpected error becomes INTERNAL", async () => {
  const client = createClient(TaskService, address);
  await expect(client.getTask({ taskGuid: "x" })).rejects.toMatchObject({ code: "INTERNAL", message: "boom" });
  expect(observed).toContain(`/diego.bbs.v1.TaskService/GetTask ${Status.INTERNAL}`);
  client.close();
});

test("server streams arrive in order and stop when the client breaks off", async () => {
  const client = createClient(TaskService, address);
  const seen: string[] = [];
  for await (const ev of client.watchTasks({ domain: "d" })) {
    if (ev.event.case === "created") seen.push(ev.event.value.task!.taskGuid);
    if (seen.length === 5) break;
  }
  expect(seen).toEqual(["t0", "t1", "t2", "t3", "t4"]);
  client.close();
});

test("an error ends a stream with its code", async () => {
  const client = createClient(TaskService, address);
  const lines: string[] = [];
  const err = await (async () => {
    for await (const line of client.taskLogs({ taskGuid: "x" })) lines.push(line.message);
  })().catch((e: unknown) => e);
  expect(lines).toEqual(["one"]);
  expect(err).toMatchObject({ code: "NOT_FOUND", message: "task gone" });
  client.close();
});

test("an unreachable server is UNAVAILABLE", async () => {
  const client = createClient(TaskService, "127.0.0.1:1", { defaultTimeoutMs: 2000 });
  await expect(client.getTask({ taskGuid: "x" })).rejects.toMatchObject({ code: "UNAVAILABLE" });
  client.close();
});

test("health and reflection are served", async () => {
  const raw = new Client(address, credentials.createInsecure());
  const check = await new Promise<Buffer>((resolve, reject) =>
    raw.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.alloc(0),
      (err, value) => (err ? reject(err) : resolve(value!)),
    ),
  );
  // HealthCheckResponse{status: SERVING(1)} is field 1 varint 1.
  expect([...check]).toEqual([0x08, 0x01]);
  const list = await new Promise<Buffer>((resolve, reject) => {
    const call = raw.makeBidiStreamRequest(
      "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    call.on("data", (b: Buffer) => {
      resolve(b);
      call.end();
    });
    call.on("error", reject);
    // ServerReflectionRequest{list_services: "*"} is field 7.
    call.write(Buffer.from([0x3a, 0x01, 0x2a]));
  });
  expect(list.toString("latin1")).toContain("diego.bbs.v1.TaskService");
  raw.close();
});

describe("a request that does not decode is INVALID_ARGUMENT, never INTERNAL", () => {
  const rawCall = (bytes: Uint8Array, method = "DesireTask") =>
    new Promise<{ code: number; details: string }>((resolve) => {
      const raw = new Client(address, credentials.createInsecure());
      raw.makeUnaryRequest(
        `/diego.bbs.v1.TaskService/${method}`,
        (b: Buffer) => b,
        (b: Buffer) => b,
        Buffer.from(bytes),
        (err) => {
          raw.close();
          resolve({ code: err?.code ?? Status.OK, details: err?.details ?? "" });
        },
      );
    });

  /** A TaskCreateRequest whose action is `levels` try actions around a run action, encoded by hand. */
  const deepTree = (levels: number) => {
    let action = Buffer.from([0x0a, 0x02, 0x0a, 0x00]); // Action{run: RunAction{path: ""}} ~ field 1 (run) with an empty path
    const wrap = (no: number, inner: Buffer) =>
      Buffer.concat([Buffer.from([(no << 3) | 2]), varint(inner.length), inner]);
    for (let i = 0; i < levels; i++) action = wrap(6, wrap(1, action)); // Action{try: TryAction{action}}
    return wrap(9, action); // TaskCreateRequest.action
  };

  test.each([
    ["random bytes", Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), "protobuf"],
    ["a truncated message", Buffer.from([0x0a, 0xff, 0xff, 0x0f, 1, 2]), "protobuf"],
    ["a string that is not UTF-8", Buffer.from([0x0a, 0x02, 0xc3, 0x28]), "UTF-8"],
    ["an action tree 50 deep", deepTree(50), "too deep"],
    ["an action tree 100,000 deep", deepTree(100_000), "too deep"],
  ])("%s", async (_name, bytes, text) => {
    const { code, details } = await rawCall(bytes);
    expect(code).toBe(Status.INVALID_ARGUMENT);
    expect(details).toContain(text);
  });

  test("a message over the receive limit is RESOURCE_EXHAUSTED", async () => {
    const { code } = await rawCall(Buffer.concat([Buffer.from([0x72]), varint(5 << 20), Buffer.alloc(5 << 20)]));
    expect(code).toBe(Status.RESOURCE_EXHAUSTED);
  });
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}

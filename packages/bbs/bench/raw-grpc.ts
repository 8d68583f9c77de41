// The raw gRPC ceiling of this machine for the lifecycle benchmark: grpc-js alone (no protobuf, no
// BBS work), an echo of a few bytes with the server in a process of its own. Run with `serve` as its
// argument it is that server and prints its port.
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  Client,
  credentials,
  Server,
  ServerCredentials,
  type sendUnaryData,
  type ServerUnaryCall,
} from "@grpc/grpc-js";

const PATH = "/bench.Echo/Echo";
const same = (b: Buffer) => b;

if (process.argv[2] === "serve") {
  const server = new Server();
  server.register(
    PATH,
    (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) => cb(null, call.request),
    same,
    same,
    "unary",
  );
  server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, port) => {
    if (err) throw err;
    process.send!(port);
  });
}

/**
 * The raw latency of one call at a time (the baseline of GetTask's): grpc-js echoing `bytes` bytes,
 * `calls` calls after a warm-up; each call's ms.
 */
export async function rawGrpcLatencies(calls: number, bytes: number): Promise<number[]> {
  return withEchoServer(async (client) => {
    const payload = Buffer.alloc(bytes, 7);
    const call = () =>
      new Promise<void>((resolve, reject) =>
        client.makeUnaryRequest(PATH, same, same, payload, (err) => (err ? reject(err) : resolve())),
      );
    for (let i = 0; i < 200; i++) await call();
    const out: number[] = [];
    for (let i = 0; i < calls; i++) {
      const t0 = process.hrtime.bigint();
      await call();
      out.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    return out;
  });
}

async function withEchoServer<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const child = fork(fileURLToPath(import.meta.url), ["serve"], {
    execArgv: ["--import", "tsx"],
    env: { ...process.env, NODE_OPTIONS: "" },
  });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once("message", (m) => resolve(m as number));
      child.once("exit", (code) => reject(new Error(`echo server exited ${code}`)));
    });
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      return await fn(client);
    } finally {
      client.close();
    }
  } finally {
    child.kill();
  }
}

/** Unary calls per second with `inFlight` concurrent callers for `seconds`. */
export async function rawGrpcRate(inFlight: number, seconds: number): Promise<number> {
  return withEchoServer(async (client) => {
    const payload = Buffer.from("0123456789abcdef");
    const call = () =>
      new Promise<void>((resolve, reject) =>
        client.makeUnaryRequest(PATH, same, same, payload, (err) => (err ? reject(err) : resolve())),
      );
    await call();
    let done = 0;
    const until = Date.now() + seconds * 1000;
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (Date.now() < until) {
          await call();
          done++;
        }
      }),
    );
    return done / seconds;
  });
}

import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { DOCKER_GATEWAY } from "@diego/testing";

export interface Received {
  path: string;
  contentType: string | undefined;
  body: string;
}

/**
 * A local HTTP receiver for completion callbacks. `answer(path, n)` decides the reply to the n-th
 * request (1-based) on a path: a status code, or "hang" to never answer.
 */
export async function callbackReceiver(answer: (path: string, n: number) => number | "hang") {
  const received: Received[] = [];
  const counts = new Map<string, number>();
  const hanging: ServerResponse[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const path = req.url ?? "/";
      received.push({ path, contentType: req.headers["content-type"], body: Buffer.concat(chunks).toString() });
      const n = (counts.get(path) ?? 0) + 1;
      counts.set(path, n);
      const reply = answer(path, n);
      if (reply === "hang") hanging.push(res);
      else {
        res.writeHead(reply);
        res.end();
      }
    });
  });
  // The docker0 gateway: the egress policy denies loopback, as it does for every callback.
  await new Promise<void>((resolve) => server.listen(0, DOCKER_GATEWAY, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path: string) => `http://${DOCKER_GATEWAY}:${port}${path}`,
    received,
    count: (path: string) => counts.get(path) ?? 0,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const res of hanging) res.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

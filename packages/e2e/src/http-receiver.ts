import { createServer, type IncomingMessage, type Server } from "node:http";
import { DOCKER_GATEWAY } from "@diego/testing";

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

/**
 * A local HTTP server for callbacks, downloads and uploads. `respond` picks each answer; every request
 * is recorded. Listens on `host` (0.0.0.0 so that containers reach it at the docker0 gateway too).
 */
export class HttpReceiver {
  readonly requests: ReceivedRequest[] = [];
  private server: Server;
  port = 0;

  constructor(
    private respond: (
      req: ReceivedRequest,
      index: number,
    ) => { status: number; body?: string | Buffer; headers?: Record<string, string> },
  ) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const received = {
          method: req.method ?? "",
          url: req.url ?? "",
          headers: req.headers,
          body: Buffer.concat(chunks),
        };
        this.requests.push(received);
        const answer = this.respond(received, this.requests.length - 1);
        res.writeHead(answer.status, answer.headers);
        res.end(answer.body ?? "");
      });
    });
  }

  async listen(host = "0.0.0.0"): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, host, resolve));
    const addr = this.server.address();
    this.port = typeof addr === "object" && addr ? addr.port : 0;
    return this;
  }

  /** URL as the BBS, a cell and a container see it: the docker0 gateway (the egress policy denies loopback). */
  url(path = "/"): string {
    return `http://${DOCKER_GATEWAY}:${this.port}${path}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

import { createServer, type Server } from "node:http";
import type { Registry } from "prom-client";

export interface StatusServerOptions {
  registry: Registry;
  /** Resolves true when the service can do its work now (its dependencies answer). */
  ready: () => Promise<boolean> | boolean;
}

/**
 * The HTTP side of every service: GET /metrics (Prometheus), /healthz (liveness: the process answers)
 * and /readyz (readiness: 200 when `ready()` says so, else 503).
 */
export class StatusServer {
  private readonly server: Server;

  constructor(options: StatusServerOptions) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      const send = (code: number, body: string, type = "text/plain; charset=utf-8") => {
        res.writeHead(code, { "content-type": type });
        res.end(body);
      };
      if (req.method !== "GET") return send(405, "method not allowed\n");
      if (path === "/healthz") return send(200, "ok\n");
      if (path === "/readyz") {
        Promise.resolve()
          .then(() => options.ready())
          .then(
            (ok) => send(ok ? 200 : 503, ok ? "ready\n" : "not ready\n"),
            (err: Error) => send(503, `not ready: ${err.message}\n`),
          );
        return;
      }
      if (path === "/metrics") {
        options.registry.metrics().then(
          (text) => send(200, text, options.registry.contentType),
          (err: Error) => send(500, `${err.message}\n`),
        );
        return;
      }
      send(404, "not found\n");
    });
  }

  /** Listens on host:port (port 0 picks one) and returns the port. */
  listen(address: string): Promise<number> {
    const { host, port } = splitHostPort(address);
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => {
        const addr = this.server.address();
        resolve(typeof addr === "object" && addr ? addr.port : port);
      });
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }
}

export function splitHostPort(address: string): { host: string; port: number } {
  const idx = address.lastIndexOf(":");
  if (idx < 0) throw new Error(`address ${JSON.stringify(address)} must be host:port`);
  const host = address.slice(0, idx).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(idx + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`address ${JSON.stringify(address)} has a bad port`);
  return { host, port };
}

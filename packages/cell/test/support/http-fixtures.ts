import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { createGzip } from "node:zlib";
import { pack } from "tar-stream";
import { DOCKER_GATEWAY } from "@diego/testing";

export interface Upload {
  path: string;
  body: Buffer;
  headers: Record<string, string | string[] | undefined>;
}

/** A local HTTP server (on 0.0.0.0, so containers reach it at 172.17.0.1 too) serving files and taking uploads. */
export class HttpFixture {
  readonly files = new Map<string, { body: Buffer; etag: string }>();
  readonly uploads: Upload[] = [];
  readonly gets: Array<{ path: string; status: number }> = [];
  /** path → Location: GETs of these answer 302. */
  readonly redirects = new Map<string, string>();
  /** Status codes the next uploads answer with (then 200). */
  uploadStatuses: number[] = [];
  private server!: Server;
  port = 0;

  static async start(): Promise<HttpFixture> {
    const f = new HttpFixture();
    f.server = createServer((req, res) => {
      const path = req.url ?? "/";
      if (req.method === "POST") {
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
          const status = f.uploadStatuses.shift() ?? 200;
          f.uploads.push({ path, body: Buffer.concat(chunks), headers: req.headers });
          res.writeHead(status).end();
        });
        return;
      }
      const location = f.redirects.get(path);
      if (location) {
        f.gets.push({ path, status: 302 });
        return res.writeHead(302, { location }).end();
      }
      const file = f.files.get(path);
      if (!file) {
        f.gets.push({ path, status: 404 });
        return res.writeHead(404).end("no");
      }
      if (req.headers["if-none-match"] === file.etag) {
        f.gets.push({ path, status: 304 });
        return res.writeHead(304).end();
      }
      f.gets.push({ path, status: 200 });
      res.writeHead(200, { etag: file.etag, "content-length": file.body.length }).end(file.body);
    });
    await new Promise<void>((r) => f.server.listen(0, "0.0.0.0", r));
    f.port = (f.server.address() as { port: number }).port;
    return f;
  }

  serve(path: string, body: Buffer | string): void {
    const b = Buffer.from(body);
    this.files.set(path, { body: b, etag: `"${createHash("md5").update(b).digest("hex")}"` });
  }

  /** URL as the cell sees it: the docker0 gateway, since the egress policy denies loopback. */
  url(path: string): string {
    return `http://${DOCKER_GATEWAY}:${this.port}${path}`;
  }

  /** URL as a container on the default bridge sees it. */
  containerUrl(path: string): string {
    return `http://${DOCKER_GATEWAY}:${this.port}${path}`;
  }

  close(): Promise<void> {
    return new Promise((r) => {
      this.server.close(() => r());
      this.server.closeAllConnections();
    });
  }
}

export async function tarball(files: Record<string, string>, gzip = false): Promise<Buffer> {
  const p = pack();
  for (const [name, text] of Object.entries(files)) p.entry({ name, size: Buffer.byteLength(text) }, text);
  p.finalize();
  const src = gzip ? p.pipe(createGzip()) : p;
  const chunks: Buffer[] = [];
  for await (const c of src) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export function sha256(b: Buffer | string): string {
  return createHash("sha256").update(b).digest("hex");
}

import type { Hash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { extract } from "tar-stream";

/** The first regular file of a tar stream: its name and up to maxBytes of its content (and whether more followed). */
export async function firstFile(
  tar: NodeJS.ReadableStream,
  maxBytes = Infinity,
): Promise<{ name: string; data: Buffer; truncated: boolean } | undefined> {
  const ex = extract();
  let found: { name: string; data: Buffer; truncated: boolean } | undefined;
  return new Promise((resolve, reject) => {
    ex.on("entry", (header, stream, next) => {
      if (found || header.type !== "file") {
        stream.on("end", next);
        stream.resume();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let truncated = false;
      stream.on("data", (c: unknown) => {
        if (!Buffer.isBuffer(c)) return;
        if (size >= maxBytes) {
          truncated = true;
          return;
        }
        const take = c.subarray(0, maxBytes - size);
        if (take.length < c.length) truncated = true;
        chunks.push(take);
        size += take.length;
      });
      stream.on("end", () => {
        found = { name: header.name, data: Buffer.concat(chunks), truncated };
        next();
      });
    });
    ex.on("finish", () => resolve(found));
    ex.on("error", reject);
    tar.on("error", reject);
    tar.pipe(ex);
  });
}

/**
 * The end of the first regular file of a tar stream: its bytes from `offset` on, at most the last
 * `maxBytes` of them (what comes before is skipped unread, never held); undefined when there is none.
 */
export async function fileTail(
  tar: NodeJS.ReadableStream,
  offset: number,
  maxBytes: number,
): Promise<Buffer | undefined> {
  const ex = extract();
  let found: Buffer | undefined;
  return new Promise((resolve, reject) => {
    ex.on("entry", (header, stream, next) => {
      if (found || header.type !== "file") {
        stream.on("end", next);
        stream.resume();
        return;
      }
      const from = Math.max(offset, (header.size ?? 0) - maxBytes);
      const chunks: Buffer[] = [];
      let at = 0;
      stream.on("data", (c: unknown) => {
        if (!Buffer.isBuffer(c)) return;
        const start = Math.max(0, from - at);
        if (start < c.length) chunks.push(c.subarray(start));
        at += c.length;
      });
      stream.on("end", () => {
        found = Buffer.concat(chunks);
        next();
      });
    });
    ex.on("finish", () => resolve(found));
    ex.on("error", reject);
    tar.on("error", reject);
    tar.pipe(ex);
  });
}

/**
 * Streams the first regular file of a tar stream into `file` (never held in memory whole), failing
 * once more than `maxBytes` came; returns its size and the digests given, or undefined when the
 * archive holds no regular file.
 */
export async function firstFileTo(
  tar: NodeJS.ReadableStream,
  file: string,
  maxBytes: number,
  digests: Record<string, Hash>,
): Promise<number | undefined> {
  const ex = extract();
  let size: number | undefined;
  return new Promise((resolve, reject) => {
    ex.on("entry", (header, stream, next) => {
      if (size !== undefined || header.type !== "file") {
        stream.on("end", next);
        stream.resume();
        return;
      }
      let seen = 0;
      const count = new Transform({
        transform(chunk: Buffer, _enc, done) {
          seen += chunk.length;
          if (seen > maxBytes)
            return done(new Error(`the file is larger than the ${maxBytes} bytes an upload may send`));
          for (const h of Object.values(digests)) h.update(chunk);
          done(null, chunk);
        },
      });
      pipeline(stream, count, createWriteStream(file)).then(
        () => {
          size = seen;
          next();
        },
        (err: unknown) => {
          ex.destroy(err as Error);
          reject(err);
        },
      );
    });
    ex.on("finish", () => resolve(size));
    ex.on("error", reject);
    tar.on("error", reject);
    tar.pipe(ex);
  });
}

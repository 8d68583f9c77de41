import type { Hash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { extract } from "tar-stream";

/**
 * Reads the first regular file of a tar stream: `collect` is given its header's name and size and
 * returns what to do with each chunk and what the file came to; other entries are skipped unread.
 */
function readFirstFile<T>(
  tar: NodeJS.ReadableStream,
  collect: (name: string, size: number) => { chunk(c: Buffer): void; end(): T },
): Promise<T | undefined> {
  const ex = extract();
  let found: T | undefined;
  let seen = false;
  return new Promise((resolve, reject) => {
    ex.on("entry", (header, stream, next) => {
      if (seen || header.type !== "file") {
        stream.on("end", next);
        stream.resume();
        return;
      }
      seen = true;
      const file = collect(header.name, header.size ?? 0);
      stream.on("data", (c: unknown) => {
        if (Buffer.isBuffer(c)) file.chunk(c);
      });
      stream.on("end", () => {
        found = file.end();
        next();
      });
    });
    ex.on("finish", () => resolve(found));
    ex.on("error", reject);
    tar.on("error", reject);
    tar.pipe(ex);
  });
}

/** The first regular file of a tar stream: its name and up to maxBytes of its content (and whether more followed). */
export async function firstFile(
  tar: NodeJS.ReadableStream,
  maxBytes = Infinity,
): Promise<{ name: string; data: Buffer; truncated: boolean } | undefined> {
  return readFirstFile(tar, (name) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let truncated = false;
    return {
      chunk: (c) => {
        const take = c.subarray(0, Math.max(0, maxBytes - size));
        if (take.length < c.length) truncated = true;
        if (take.length === 0) return;
        chunks.push(take);
        size += take.length;
      },
      end: () => ({ name, data: Buffer.concat(chunks), truncated }),
    };
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
  return readFirstFile(tar, (_name, size) => {
    const from = Math.max(offset, size - maxBytes);
    const chunks: Buffer[] = [];
    let at = 0;
    return {
      chunk: (c) => {
        const start = Math.max(0, from - at);
        if (start < c.length) chunks.push(c.subarray(start));
        at += c.length;
      },
      end: () => Buffer.concat(chunks),
    };
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

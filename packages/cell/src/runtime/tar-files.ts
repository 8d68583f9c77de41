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

import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import pLimit, { type LimitFunction } from "p-limit";

export interface FetchOptions {
  /** Keep the download in the cache under this key (revalidated with ETag / Last-Modified). */
  cacheKey?: string;
  checksumAlgorithm?: string;
  checksumValue?: string;
  signal?: AbortSignal;
}

export interface Fetched {
  /** A local file with the content; valid until release(). */
  file: string;
  size: number;
  release(): Promise<void>;
}

interface Meta {
  url: string;
  etag?: string;
  lastModified?: string;
  size: number;
}

/**
 * The cell's downloads (docs/contract.md, actions): at most `maxConcurrent` at once, checksums
 * verified, entries with a cache_key kept on disk up to `maxBytes` in all (least recently used go
 * first; entries in use are never removed).
 */
export class DownloadCache {
  private readonly limit: LimitFunction;
  private readonly inUse = new Map<string, number>();
  private readonly tmpDir: string;
  private readonly entriesDir: string;

  constructor(
    dir: string,
    private readonly maxBytes: number,
    maxConcurrent = 5,
  ) {
    this.limit = pLimit(maxConcurrent);
    this.tmpDir = join(dir, "tmp");
    this.entriesDir = join(dir, "entries");
  }

  async init(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.entriesDir, { recursive: true });
  }

  fetch(url: string, options: FetchOptions = {}): Promise<Fetched> {
    return this.limit(() => this.fetchNow(url, options));
  }

  private async fetchNow(url: string, options: FetchOptions): Promise<Fetched> {
    const key = options.cacheKey ? createHash("sha256").update(options.cacheKey).digest("hex") : undefined;
    const entry = key ? join(this.entriesDir, key) : undefined;
    const meta = entry ? await readMeta(entry) : undefined;
    const headers: Record<string, string> = {};
    if (meta && meta.url === url) {
      if (meta.etag) headers["if-none-match"] = meta.etag;
      if (meta.lastModified) headers["if-modified-since"] = meta.lastModified;
    }
    const res = await fetch(url, { headers, signal: options.signal });
    if (res.status === 304 && entry && meta) {
      await res.body?.cancel();
      const file = join(entry, "data");
      await verifyChecksum(file, options);
      await utimes(entry, new Date(), new Date()).catch(() => undefined);
      return this.hold(key!, file, meta.size);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new Error(`GET ${url}: HTTP ${res.status}`);
    }
    const tmp = join(this.tmpDir, randomUUID());
    try {
      await pipeline(Readable.fromWeb(res.body as never), createWriteStream(tmp), { signal: options.signal });
      await verifyChecksum(tmp, options);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    const size = (await stat(tmp)).size;
    if (!entry || size > this.maxBytes || this.inUse.has(key!)) {
      return { file: tmp, size, release: () => rm(tmp, { force: true }) };
    }
    await rm(entry, { recursive: true, force: true });
    await mkdir(entry, { recursive: true });
    await rename(tmp, join(entry, "data"));
    const newMeta: Meta = {
      url,
      size,
      etag: res.headers.get("etag") ?? undefined,
      lastModified: res.headers.get("last-modified") ?? undefined,
    };
    await writeFile(join(entry, "meta.json"), JSON.stringify(newMeta));
    const held = this.hold(key!, join(entry, "data"), size);
    await this.evict();
    return held;
  }

  private hold(key: string, file: string, size: number): Fetched {
    this.inUse.set(key, (this.inUse.get(key) ?? 0) + 1);
    let released = false;
    return {
      file,
      size,
      release: async () => {
        if (released) return;
        released = true;
        const n = (this.inUse.get(key) ?? 1) - 1;
        if (n <= 0) this.inUse.delete(key);
        else this.inUse.set(key, n);
      },
    };
  }

  /** Removes least recently used entries until the cache fits in maxBytes. */
  async evict(): Promise<void> {
    const entries: Array<{ key: string; size: number; used: number }> = [];
    for (const key of await readdir(this.entriesDir).catch(() => [] as string[])) {
      const meta = await readMeta(join(this.entriesDir, key));
      const used = (await stat(join(this.entriesDir, key)).catch(() => undefined))?.mtimeMs ?? 0;
      entries.push({ key, size: meta?.size ?? 0, used });
    }
    let total = entries.reduce((n, e) => n + e.size, 0);
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      if (this.inUse.has(e.key)) continue;
      await rm(join(this.entriesDir, e.key), { recursive: true, force: true });
      total -= e.size;
    }
  }

  /** Bytes held by cached entries now. */
  async size(): Promise<number> {
    let total = 0;
    for (const key of await readdir(this.entriesDir).catch(() => [] as string[]))
      total += (await readMeta(join(this.entriesDir, key)))?.size ?? 0;
    return total;
  }
}

async function readMeta(entry: string): Promise<Meta | undefined> {
  try {
    return JSON.parse(await readFile(join(entry, "meta.json"), "utf8")) as Meta;
  } catch {
    return undefined;
  }
}

async function verifyChecksum(file: string, options: FetchOptions): Promise<void> {
  if (!options.checksumAlgorithm || !options.checksumValue) return;
  const hash = createHash(options.checksumAlgorithm.toLowerCase());
  await pipeline(createReadStream(file), hash);
  const actual = hash.digest("hex");
  if (actual !== options.checksumValue.toLowerCase()) {
    throw new Error(`checksum mismatch: ${options.checksumAlgorithm} ${actual}, expected ${options.checksumValue}`);
  }
}

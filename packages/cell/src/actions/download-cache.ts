import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { egressRequest, EgressPolicy } from "@diego/kit";
import pLimit, { type LimitFunction } from "p-limit";

export interface FetchOptions {
  /** Keep the download in the cache under this key (revalidated with ETag / Last-Modified). */
  cacheKey?: string;
  checksumAlgorithm?: string;
  checksumValue?: string;
  signal?: AbortSignal;
  /** The task downloading: one task holds at most `perTask` of the pool's slots. */
  owner?: string;
}

/** What one download may take (docs/security.md). */
export interface DownloadLimits {
  /** Where downloads may go; default: the default policy. */
  egress?: EgressPolicy;
  /** Bytes one download may have; default 1 GiB. */
  maxBytes?: number;
  /** The whole download, redirects included; default 10 minutes. */
  timeoutMs?: number;
  /** A download that receives nothing for this long fails; default 30 s. */
  idleTimeoutMs?: number;
  /** Slots of the pool one task may hold at once; default half the pool (at least 1). */
  perTask?: number;
  /** Redirects followed, each within the egress policy; default 3. */
  maxRedirects?: number;
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
  private readonly owners = new Map<string, { limit: LimitFunction; users: number }>();
  private readonly limits: Required<DownloadLimits>;

  constructor(
    dir: string,
    private readonly maxBytes: number,
    maxConcurrent = 5,
    limits: DownloadLimits = {},
  ) {
    this.limit = pLimit(maxConcurrent);
    this.limits = {
      egress: limits.egress ?? new EgressPolicy(),
      maxBytes: limits.maxBytes ?? 1024 ** 3,
      timeoutMs: limits.timeoutMs ?? 600_000,
      idleTimeoutMs: limits.idleTimeoutMs ?? 30_000,
      perTask: limits.perTask ?? Math.max(1, Math.floor(maxConcurrent / 2)),
      maxRedirects: limits.maxRedirects ?? 3,
    };
    this.tmpDir = join(dir, "tmp");
    this.entriesDir = join(dir, "entries");
  }

  async init(): Promise<void> {
    await rm(this.tmpDir, { recursive: true, force: true });
    await mkdir(this.tmpDir, { recursive: true });
    await mkdir(this.entriesDir, { recursive: true });
  }

  fetch(url: string, options: FetchOptions = {}): Promise<Fetched> {
    if (!options.owner) return this.limit(() => this.fetchNow(url, options));
    const owner = options.owner;
    let o = this.owners.get(owner);
    if (!o) this.owners.set(owner, (o = { limit: pLimit(this.limits.perTask), users: 0 }));
    o.users++;
    const held = o;
    return held
      .limit(() => this.limit(() => this.fetchNow(url, options)))
      .finally(() => {
        if (--held.users === 0) this.owners.delete(owner);
      });
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
    const { egress, maxBytes, timeoutMs, idleTimeoutMs, maxRedirects } = this.limits;
    const res = await egressRequest(egress, url, {
      headers,
      signal: options.signal,
      timeoutMs,
      idleTimeoutMs,
      maxRedirects,
    });
    if (res.status === 304 && entry && meta) {
      res.body.destroy();
      const file = join(entry, "data");
      await verifyChecksum(file, options);
      await utimes(entry, new Date(), new Date()).catch(() => undefined);
      return this.hold(key!, file, meta.size);
    }
    if (res.status < 200 || res.status >= 300) {
      res.body.destroy();
      throw new Error(`GET ${url}: HTTP ${res.status}`);
    }
    const declared = Number(res.headers["content-length"] ?? 0);
    if (declared > maxBytes) {
      res.body.destroy();
      throw new Error(`GET ${url}: ${declared} bytes, more than the ${maxBytes} a download may have`);
    }
    const tmp = join(this.tmpDir, randomUUID());
    try {
      await pipeline(res.body, capped(maxBytes, url), createWriteStream(tmp), { signal: options.signal });
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
      etag: header(res.headers.etag),
      lastModified: header(res.headers["last-modified"]),
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

function header(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Passes bytes through until more than `max` came, then fails naming the limit. */
export function capped(max: number, what: string): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      seen += chunk.length;
      if (seen > max) done(new Error(`${what}: more than the ${max} bytes allowed`));
      else done(null, chunk);
    },
  });
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

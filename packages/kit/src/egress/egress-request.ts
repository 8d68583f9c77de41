import http, { type IncomingHttpHeaders, type IncomingMessage } from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import { EgressDenied, type EgressPolicy } from "./egress-policy.js";

export interface EgressRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Sent as the body; a stream is sent as it is read (never held in memory whole). */
  body?: Buffer | string | Readable;
  /** Redirects followed (GET only, each hop checked again); default 0. */
  maxRedirects?: number;
  /** The whole request, redirects and the response headers included. */
  timeoutMs: number;
  /** Refuses a connection that sends or receives nothing for this long. */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface EgressResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The response body: read it or call `body.destroy()`. */
  body: IncomingMessage;
  /** The URL that answered (after redirects). */
  url: string;
}

/** The most redirects any caller may ask for. */
export const MAX_EGRESS_REDIRECTS = 5;

/**
 * One HTTP(S) request under `policy`: the host is checked before connecting (an IP literal at once, a
 * name after DNS resolution, on every connection), redirects are followed only for GET, at most
 * `maxRedirects` hops, each checked the same way. Rejects with EgressDenied when the policy refuses.
 */
export async function egressRequest(
  policy: EgressPolicy,
  url: string,
  options: EgressRequestOptions,
): Promise<EgressResponse> {
  const maxRedirects = Math.min(options.maxRedirects ?? 0, MAX_EGRESS_REDIRECTS);
  const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs), ...(options.signal ? [options.signal] : [])]);
  let current = url;
  for (let hop = 0; ; hop++) {
    const res = await once(policy, current, options, signal);
    const location = res.headers.location;
    const redirect = [301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && location;
    if (!redirect || (options.method ?? "GET") !== "GET")
      return { status: res.statusCode ?? 0, headers: res.headers, body: res, url: current };
    res.destroy();
    if (hop >= maxRedirects) throw new EgressDenied(`too many redirects (at most ${maxRedirects} are followed)`);
    current = new URL(location, current).toString();
  }
}

function once(
  policy: EgressPolicy,
  url: string,
  options: EgressRequestOptions,
  signal: AbortSignal,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return reject(new Error(`not a URL: ${url}`));
    }
    if (target.protocol !== "http:" && target.protocol !== "https:")
      return reject(new EgressDenied(`only http and https URLs are allowed (got ${target.protocol})`));
    const literal = policy.refusalOfUrlLiteral(url);
    if (literal) return reject(new EgressDenied(literal));
    const lib = target.protocol === "https:" ? https : http;
    const req = lib.request(target, {
      method: options.method ?? "GET",
      headers: options.headers,
      lookup: policy.lookup,
      agent: false,
      signal,
      timeout: options.idleTimeoutMs,
    });
    req.on("timeout", () => req.destroy(new Error(`no data for ${options.idleTimeoutMs} ms`)));
    req.on("error", (err) =>
      reject(signal.aborted && !(err instanceof EgressDenied) ? abortReason(signal, options) : err),
    );
    req.on("response", (res) => {
      if (options.idleTimeoutMs)
        res.setTimeout(options.idleTimeoutMs, () => res.destroy(new Error(`no data for ${options.idleTimeoutMs} ms`)));
      resolve(res);
    });
    const body = options.body;
    if (body === undefined) req.end();
    else if (typeof body === "string" || Buffer.isBuffer(body)) req.end(body);
    else {
      body.on("error", (err) => req.destroy(err));
      body.pipe(req);
    }
  });
}

function abortReason(signal: AbortSignal, options: EgressRequestOptions): Error {
  const reason = signal.reason as Error | undefined;
  if (reason?.name === "TimeoutError") return new Error(`timed out after ${options.timeoutMs} ms`);
  return reason instanceof Error ? reason : new Error("aborted");
}

import { backoffDelay, DiegoError, type BackoffOptions } from "@diego/models";
import type { Task, TaskEvent } from "@diego/proto";

/** Which events a watch wants: one domain ("" or absent: all) and labels that must all match. */
export interface WatchFilter {
  domain?: string;
  labels?: Record<string, string>;
}

export interface WatchOptions {
  signal?: AbortSignal;
  /** Start after this TaskEvent resume_token (e.g. one a previous run saved) instead of from now. */
  resumeToken?: string;
  /** Reconnect after a cut and go on from the last event (default true); false: the error ends the stream. */
  resume?: boolean;
  /** How long the BBS may stay unreachable before the watch gives up with its error; default 60 s. */
  unreachableTimeoutMs?: number;
  /** Waits between reconnects; default 100 ms doubling up to 5 s, jittered. */
  backoff?: BackoffOptions;
  /** Told of every reconnect: the attempt (1, 2, …) and the error that cut the stream. */
  onReconnect?: (attempt: number, err: unknown) => void;
}

/**
 * What a watch yields besides TaskEvents: the events after the last one seen could not be had any
 * more (the BBS no longer keeps them, or restarted), so some may be missing; `tasks` is every task
 * matching the filter, listed after the new stream went live. Treat it as a fresh snapshot (events
 * that follow may be older than it: compare `updated_at`).
 */
export interface TaskResync {
  resync: true;
  tasks: Task[];
  /** The BBS's reason (e.g. `the events after this resume_token are no longer kept; …`). */
  reason: string;
}

export type WatchItem = TaskEvent | TaskResync;

export function isResync(item: WatchItem): item is TaskResync {
  return (item as TaskResync).resync === true;
}

/** What to do after a watch stream broke. */
export type CutDecision = "resume" | "resync" | "fail";

/**
 * After a stream broke with `err`: go on from the last resume_token (a transport cut, a BBS that
 * stopped, a watcher cut off for falling behind, a reset), list again (the events to resume from are
 * gone: OUT_OF_RANGE, or a token the BBS no longer reads), or give up (the request itself is wrong or
 * not allowed). `ownToken`: the token in use came from a stream, not from the caller. Pure.
 */
export function decideAfterCut(err: unknown, ownToken: boolean): CutDecision {
  if (!(err instanceof DiegoError)) return "resume";
  switch (err.code) {
    case "OUT_OF_RANGE":
      return "resync";
    case "INVALID_ARGUMENT":
      return ownToken && err.violations.some((v) => v.field === "resume_token") ? "resync" : "fail";
    case "PERMISSION_DENIED":
    case "UNAUTHENTICATED":
    case "UNIMPLEMENTED":
    case "FAILED_PRECONDITION":
      return "fail";
    default:
      return "resume";
  }
}

export const DEFAULT_WATCH_BACKOFF: BackoffOptions = { initialMs: 100, maxMs: 5_000 };

export interface WatchSource {
  /** Opens one WatchTasks stream (after `resumeToken` when not empty). */
  open(filter: WatchFilter, resumeToken: string, signal: AbortSignal | undefined): AsyncIterable<TaskEvent>;
  /** Every task matching the filter (all pages). */
  list(filter: WatchFilter, signal: AbortSignal | undefined): Promise<Task[]>;
}

/**
 * A watch that survives cuts: it keeps the resume_token of the last event it passed on and, when the
 * stream breaks, reopens it from there after a capped, jittered backoff, so that no event is missed or
 * repeated. The live marker is passed on once, from the first stream (a resumed stream's marker says
 * nothing new). When the events cannot be resumed, it watches afresh and yields a TaskResync with the
 * current tasks. It gives up when the first stream fails before it went live (nothing to resume yet),
 * when the BBS stays unreachable past `unreachableTimeoutMs`, or on an error no retry can fix;
 * aborting `signal` ends it with CANCELLED.
 */
export async function* resumableWatch(
  source: WatchSource,
  filter: WatchFilter,
  options: WatchOptions = {},
): AsyncGenerator<WatchItem> {
  const { signal } = options;
  const backoff = options.backoff ?? DEFAULT_WATCH_BACKOFF;
  const outageLimitMs = options.unreachableTimeoutMs ?? 60_000;
  let token = options.resumeToken ?? "";
  let ownToken = false;
  let liveShown = false;
  let resyncReason: string | undefined;
  let attempt = 0;
  let outageSince: number | undefined;
  for (;;) {
    let cut: unknown;
    try {
      for await (const ev of source.open(filter, token, signal)) {
        if (ev.event.case === "live") {
          attempt = 0;
          outageSince = undefined;
          // A fresh stream starts at its marker; a resumed one goes on from the token it was given.
          if (!token) {
            token = ev.resumeToken;
            ownToken = true;
          }
          if (resyncReason !== undefined) {
            const tasks = await source.list(filter, signal);
            yield { resync: true, tasks, reason: resyncReason };
            resyncReason = undefined;
          }
          if (!liveShown) {
            liveShown = true;
            yield ev;
          }
          continue;
        }
        if (ev.resumeToken) {
          token = ev.resumeToken;
          ownToken = true;
        }
        yield ev;
      }
      cut = new DiegoError("UNAVAILABLE", "the BBS ended the event stream");
    } catch (err) {
      cut = err;
    }
    if (signal?.aborted) throw new DiegoError("CANCELLED", "the watch was stopped");
    if (options.resume === false) throw cut;
    const decision = decideAfterCut(cut, ownToken);
    // Before the first stream went live there is nothing to resume: the caller hears at once that the BBS cannot be reached.
    if (decision === "fail" || (decision === "resume" && !liveShown)) throw cut;
    if (decision === "resync") {
      token = "";
      ownToken = false;
      resyncReason = (cut as Error).message;
    }
    outageSince ??= Date.now();
    if (Date.now() - outageSince > outageLimitMs) throw cut;
    attempt++;
    options.onReconnect?.(attempt, cut);
    await sleep(backoffDelay(attempt, backoff), signal);
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const stopped = () => new DiegoError("CANCELLED", "the watch was stopped");
    if (signal?.aborted) return reject(stopped());
    const onAbort = () => {
      clearTimeout(timer);
      reject(stopped());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

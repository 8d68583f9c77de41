/**
 * A position in the task event stream: after the `seq`-th event (from 0) of store revision
 * `revision`. One etcd transaction may change several tasks at one revision, hence `seq`. `epoch`
 * names the history the revision belongs to ("etcd": shared by every BBS on that etcd; a memory
 * store has one of its own per process), so a token from another history is never misread.
 */
export interface StreamPosition {
  epoch: string;
  revision: number;
  seq: number;
}

/** Every event of `revision` is before this position. */
export const WHOLE_REVISION = 0x7fffffff;

export function formatResumeToken(p: StreamPosition): string {
  return `${p.epoch}.${p.revision}.${p.seq}`;
}

/** The position of a token, or undefined when it is not one this BBS issued. Pure. */
export function parseResumeToken(token: string): StreamPosition | undefined {
  const m = /^([A-Za-z0-9-]{1,64})\.(\d{1,15})\.(\d{1,10})$/.exec(token);
  if (!m) return undefined;
  const seq = Number(m[3]);
  if (seq > WHOLE_REVISION) return undefined;
  return { epoch: m[1], revision: Number(m[2]), seq };
}

/** Negative when a is before b, 0 when equal, positive after (same epoch assumed). */
export function comparePositions(a: StreamPosition, b: StreamPosition): number {
  return a.revision !== b.revision ? a.revision - b.revision : a.seq - b.seq;
}

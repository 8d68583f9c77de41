import type { Logger } from "@diego/kit";
import type { PresenceRecord } from "./presence-store.js";
import { decideCellLoss, type CellHoldReason, type CellLossDecision } from "./decide-cell-loss.js";

export interface CellLivenessOptions {
  /** The presence TTL assumed until a record says otherwise (the cells' default). */
  defaultTtlMs: number;
  /** The longest a mass silence holds cells (see decideCellLoss). */
  holdMaxMs: number;
  logger: Logger;
  nowMs?: () => number;
  /** Called with each decision that holds cells (or stops holding them), for metrics. */
  onHold?: (held: number, reason: CellHoldReason | undefined) => void;
}

interface Sighting {
  present: boolean;
  lastPresentMs: number;
  /** The TTL its record named, when known. */
  ttlMs?: number;
}

/**
 * What this BBS has seen of cells' presence (from the presence watch and the convergence passes)
 * and when it could hear them again (its start, etcd answering again, leadership gained), kept for
 * the pure decideCellLoss. It marks a recovery itself when a mass silence ends (heartbeats resumed),
 * so that the cells still silent then get one more TTL.
 */
export class CellLiveness {
  private readonly cells = new Map<string, Sighting>();
  private readonly marks: number[] = [];
  private readonly startedAtMs: number;
  private lastReason?: CellHoldReason;
  private readonly listeners = new Set<() => void>();

  constructor(private readonly o: CellLivenessOptions) {
    this.startedAtMs = this.now();
    this.markRecovered("BBS started");
  }

  private now(): number {
    return (this.o.nowMs ?? Date.now)();
  }

  /** This BBS can hear cells again from now on (etcd answers again, leadership gained...). */
  markRecovered(why: string): void {
    const now = this.now();
    this.marks.push(now);
    // Only the latest one counts once older than a TTL; keep a few for the logs' sake.
    if (this.marks.length > 8) this.marks.splice(0, this.marks.length - 8);
    this.o.logger.debug({ why }, "cells get one presence TTL to be heard again");
  }

  /** A presence record exists (from the watch: created or changed). */
  sawPresent(cellId: string, ttlMs?: number): void {
    const known = this.cells.get(cellId)?.ttlMs;
    this.cells.set(cellId, { present: true, lastPresentMs: this.now(), ttlMs: ttlMs ?? known });
  }

  /** A presence record is gone (expired or deregistered). */
  sawGone(cellId: string): void {
    this.cells.set(cellId, { present: false, lastPresentMs: this.now(), ttlMs: this.cells.get(cellId)?.ttlMs });
    this.changed();
  }

  /** The whole set of present cells, read at once: every other known cell is absent. */
  sawList(present: Iterable<PresenceRecord>): void {
    const now = this.now();
    const seen = new Set<string>();
    for (const { cellId, ttlMs } of present) {
      seen.add(cellId);
      this.cells.set(cellId, { present: true, lastPresentMs: now, ttlMs: ttlMs ?? this.cells.get(cellId)?.ttlMs });
    }
    let anyGone = false;
    for (const [id, s] of this.cells) {
      if (s.present && !seen.has(id)) {
        this.cells.set(id, { present: false, lastPresentMs: now, ttlMs: s.ttlMs });
        anyGone = true;
      }
    }
    if (anyGone) this.changed();
  }

  /** Cells that tasks name: one never seen counts as last present at this BBS's start. */
  know(cellIds: Iterable<string>): void {
    for (const id of cellIds)
      if (id && !this.cells.has(id)) this.cells.set(id, { present: false, lastPresentMs: this.startedAtMs });
  }

  /** Called when a cell is found gone (the reaper decides then). */
  onGone(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Which absent cells are lost now, and which are held (logged when the hold starts or ends). */
  decide(): CellLossDecision {
    const now = this.now();
    this.forgetOld(now);
    const inputs = {
      cells: [...this.cells].map(([cellId, s]) => ({ cellId, present: s.present, lastPresentMs: s.lastPresentMs })),
      nowMs: now,
      ttlMs: this.ttlMs(),
      holdMaxMs: this.o.holdMaxMs,
      recoveredAtMs: this.marks,
    };
    let decision = decideCellLoss(inputs);
    const reason = decision.hold?.reason;
    if (this.lastReason === "mass-silence" && reason !== "mass-silence" && decision.lost.length > 0) {
      // Heartbeats resumed: the cells still silent get one TTL from now, as after any recovery.
      this.markRecovered("heartbeats resumed after a mass silence");
      decision = decideCellLoss({ ...inputs, recoveredAtMs: this.marks });
    }
    const newReason = decision.hold?.reason;
    if (newReason !== this.lastReason) {
      const fields = { held: decision.held, until: decision.hold && new Date(decision.hold.untilMs).toISOString() };
      if (newReason === "mass-silence")
        this.o.logger.warn(
          fields,
          "most cells went silent at once: holding them (this BBS may be the one cut off) until heartbeats resume or the hold ends",
        );
      else if (newReason === "recovering")
        this.o.logger.info(fields, "cells not heard yet after a recovery are held for one presence TTL");
      else if (newReason === "settling") this.o.logger.debug(fields, "cells just found silent settle for half a TTL");
      else if (this.lastReason) this.o.logger.info({ lost: decision.lost }, "no longer holding silent cells");
      this.lastReason = newReason;
    }
    this.o.onHold?.(decision.held.length, newReason);
    return decision;
  }

  /** The longest TTL the known records named; the default when none did. */
  private ttlMs(): number {
    let ttl = 0;
    for (const s of this.cells.values()) if (s.ttlMs !== undefined && s.ttlMs > ttl) ttl = s.ttlMs;
    return ttl || this.o.defaultTtlMs;
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** Cells absent far longer than any hold are forgotten (a cell that returns is seen afresh). */
  private forgetOld(now: number): void {
    const horizon = now - this.o.holdMaxMs - 2 * this.ttlMs();
    for (const [id, s] of this.cells) if (!s.present && s.lastPresentMs < horizon) this.cells.delete(id);
  }
}

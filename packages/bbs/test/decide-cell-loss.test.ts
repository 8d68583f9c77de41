import { decideCellLoss, type CellLossDecision, type CellSighting } from "../src/cells/decide-cell-loss.js";

const NOW = 1_000_000;
const TTL = 15_000;
const HOLD = 60_000;

const up = (cellId: string): CellSighting => ({ cellId, present: true, lastPresentMs: NOW });
/** Absent: its record was last known to exist `agoMs` ago. */
const gone = (cellId: string, agoMs: number): CellSighting => ({ cellId, present: false, lastPresentMs: NOW - agoMs });

interface Case {
  name: string;
  cells: CellSighting[];
  marksAgo?: number[];
  want: CellLossDecision;
}

const cases: Case[] = [
  { name: "every cell present: nothing to decide", cells: [up("a"), up("b")], want: { lost: [], held: [] } },
  {
    name: "one cell of three silent for half a TTL: lost",
    cells: [up("a"), up("b"), gone("c", TTL / 2)],
    want: { lost: ["c"], held: [] },
  },
  {
    name: "one cell of three just found silent: settling (others that lost the BBS too would follow within it)",
    cells: [up("a"), up("b"), gone("c", 1_000)],
    want: { lost: [], held: ["c"], hold: { reason: "settling", untilMs: NOW - 1_000 + TTL / 2 } },
  },
  {
    name: "one cell of two silent is not most: lost",
    cells: [up("a"), gone("b", 10_000)],
    want: { lost: ["b"], held: [] },
  },
  {
    name: "both cells silent within one TTL: held (the BBS may be the one cut off)",
    cells: [gone("a", 3_000), gone("b", 1_000)],
    want: { lost: [], held: ["a", "b"], hold: { reason: "mass-silence", untilMs: NOW - 3_000 + HOLD } },
  },
  {
    name: "two of three silent within one TTL: held",
    cells: [up("a"), gone("b", 2_000), gone("c", 5_000)],
    want: { lost: [], held: ["c", "b"], hold: { reason: "mass-silence", untilMs: NOW - 5_000 + HOLD } },
  },
  {
    name: "two of three silent more than a TTL apart: two single deaths, both lost",
    cells: [up("a"), gone("b", 10_000), gone("c", 10_000 + TTL + 1)],
    want: { lost: ["c", "b"], held: [] },
  },
  {
    name: "a mass silence held past the bound: lost",
    cells: [gone("a", HOLD), gone("b", HOLD - 1_000)],
    want: { lost: ["a", "b"], held: [] },
  },
  {
    name: "a mass silence just inside the bound: held until the bound",
    cells: [gone("a", HOLD - 1), gone("b", HOLD - 1_000)],
    want: { lost: [], held: ["a", "b"], hold: { reason: "mass-silence", untilMs: NOW + 1 } },
  },
  {
    name: "the only cell silent cannot be told from the BBS's own isolation: held within the bound",
    cells: [gone("a", 1_000)],
    want: { lost: [], held: ["a"], hold: { reason: "mass-silence", untilMs: NOW - 1_000 + HOLD } },
  },
  {
    name: "an earlier single death is lost; a later mass silence is held",
    cells: [up("a"), up("b"), gone("old", 40_000), gone("c", 2_000), gone("d", 1_000), gone("e", 500)],
    want: { lost: ["old"], held: ["c", "d", "e"], hold: { reason: "mass-silence", untilMs: NOW - 2_000 + HOLD } },
  },
  {
    name: "within one TTL of a recovery mark (start, etcd back, leadership): every absent cell is held",
    cells: [up("a"), up("b"), gone("c", 1_000)],
    marksAgo: [TTL - 1],
    want: { lost: [], held: ["c"], hold: { reason: "recovering", untilMs: NOW + 1 } },
  },
  {
    name: "one TTL after the mark, a cell that did not come back is lost",
    cells: [up("a"), up("b"), gone("c", 10_000)],
    marksAgo: [TTL, 5 * TTL],
    want: { lost: ["c"], held: [] },
  },
  {
    name: "a mark in the future does not count",
    cells: [up("a"), up("b"), gone("c", 10_000)],
    marksAgo: [-5_000],
    want: { lost: ["c"], held: [] },
  },
  {
    name: "after a mass silence one cell of two is back: the other is held one TTL from the resumption mark",
    cells: [up("a"), gone("b", 20_000)],
    marksAgo: [2_000],
    want: { lost: [], held: ["b"], hold: { reason: "recovering", untilMs: NOW - 2_000 + TTL } },
  },
  {
    name: "never seen since the BBS started (its lastPresent is the start): held until one TTL after the start",
    cells: [up("a"), up("b"), { cellId: "c", present: false, lastPresentMs: NOW - 5_000 }],
    marksAgo: [5_000],
    want: { lost: [], held: ["c"], hold: { reason: "recovering", untilMs: NOW - 5_000 + TTL } },
  },
  {
    name: "no cell heard since the BBS started, past one TTL: a mass silence, held within the bound",
    cells: [
      { cellId: "a", present: false, lastPresentMs: NOW - 20_000 },
      { cellId: "b", present: false, lastPresentMs: NOW - 20_000 },
    ],
    marksAgo: [20_000],
    want: { lost: [], held: ["a", "b"], hold: { reason: "mass-silence", untilMs: NOW - 20_000 + HOLD } },
  },
];

describe("decideCellLoss", () => {
  test.each(cases)("$name", ({ cells, marksAgo = [], want }) => {
    const got = decideCellLoss({
      cells,
      nowMs: NOW,
      ttlMs: TTL,
      holdMaxMs: HOLD,
      recoveredAtMs: marksAgo.map((ago) => NOW - ago),
    });
    expect(got).toEqual(want);
  });
});

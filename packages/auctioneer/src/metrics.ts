import { Counter, Gauge, Histogram, type Registry } from "prom-client";

const SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10];

/** The auctioneer's own metrics, under Diego's names where Diego has one (diego-release docs/010-metrics.md). */
export class AuctioneerMetrics {
  /** Tasks a cell accepted (Diego: AuctioneerTaskAuctionsStarted). */
  readonly taskAuctionsStarted: Counter;
  /** Tasks reported to the BBS as unplaceable with RejectTask (Diego: AuctioneerTaskAuctionsFailed). */
  readonly taskAuctionsFailed: Counter;
  readonly fetchStatesDuration: Histogram;
  readonly failedCellStateRequests: Counter;
  readonly cellStateRequests: Counter;
  readonly auctionDuration: Histogram;
  readonly scheduleDuration: Histogram;
  readonly cellRefusals: Counter;
  readonly tasksWaiting: Gauge;
  readonly lockHeld: Gauge;

  constructor(registry: Registry) {
    const registers = [registry];
    this.taskAuctionsStarted = new Counter({
      name: "AuctioneerTaskAuctionsStarted",
      help: "Tasks placed on a cell that accepted them.",
      registers,
    });
    this.taskAuctionsFailed = new Counter({
      name: "AuctioneerTaskAuctionsFailed",
      help: "Tasks reported unplaceable to the BBS (RejectTask).",
      registers,
    });
    this.fetchStatesDuration = new Histogram({
      name: "AuctioneerFetchStatesDuration",
      help: "Seconds to fetch the states an auction needed (the cells the cache doubts).",
      buckets: SECONDS,
      registers,
    });
    this.failedCellStateRequests = new Counter({
      name: "AuctioneerFailedCellStateRequests",
      help: "Cell State calls that failed, timed out or answered for another cell id.",
      registers,
    });
    this.cellStateRequests = new Counter({
      name: "AuctioneerCellStateRequests",
      help: "Cell State calls made (the cell cache asks only the cells it doubts).",
      registers,
    });
    this.auctionDuration = new Histogram({
      name: "AuctioneerAuctionDuration",
      help: "Seconds of one whole auction: list cells, fetch states, schedule, commit, report.",
      buckets: SECONDS,
      registers,
    });
    this.scheduleDuration = new Histogram({
      name: "AuctioneerScheduleDuration",
      help: "Seconds spent in the pure scheduling of one batch.",
      buckets: SECONDS,
      registers,
    });
    this.cellRefusals = new Counter({
      name: "AuctioneerCellRefusals",
      help: "Tasks a cell refused at Perform.",
      registers,
    });
    this.tasksWaiting = new Gauge({
      name: "AuctioneerTasksWaiting",
      help: "Tasks held for free capacity after the last auction.",
      registers,
    });
    this.lockHeld = new Gauge({
      name: "AuctioneerLockHeld",
      help: "1 while this auctioneer holds the auctioneer lock (is the active one).",
      registers,
    });
  }
}

// bench:bbs's reads from a process of their own, as an outside client makes them: the bench's own
// process also holds the simulated cells, the auctioneer and the garbage of the earlier parts, whose
// collection would be counted in the reads' latency. Prints the figures as one JSON line.
import { readLatencies } from "./reads.js";

const [address, stored] = process.argv.slice(2);
const figures = await readLatencies(address!, Number(stored));
process.stdout.write(`${JSON.stringify(figures)}\n`);
process.exit(0);

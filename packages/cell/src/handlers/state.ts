import type { Cell } from "../cell.js";

/** CellRepService.State: capacity, compatibility and the tasks here, for the auctioneer. */
export function state(cell: Cell) {
  return () => cell.state();
}

import type { CellServiceImpl, HandlerDeps } from "./deps.js";

export const listCells =
  ({ presence }: HandlerDeps): CellServiceImpl["listCells"] =>
  async () => ({ cells: (await presence.list()).sort((a, b) => a.cellId.localeCompare(b.cellId)) });

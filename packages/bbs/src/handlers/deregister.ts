import { invalidArgument } from "@diego/models";
import type { CellRegistryServiceImpl, HandlerDeps } from "./deps.js";

export const deregister =
  ({ presence }: HandlerDeps): CellRegistryServiceImpl["deregister"] =>
  async (req) => {
    if (!req.cellId) throw invalidArgument([{ field: "cell_id", message: "is required" }]);
    await presence.deregister(req.cellId);
    return {};
  };

// Re-exports every generated module. The code under gen/ is made by scripts/gen-proto; never edit it.
export * from "./gen/diego/bbs/v1/actions_pb.js";
export * from "./gen/diego/bbs/v1/task_pb.js";
export * from "./gen/diego/bbs/v1/bbs_pb.js";
export * from "./gen/diego/bbs/v1/cells_pb.js";
export * from "./gen/diego/bbs/v1/internal_pb.js";
export * as cellv1 from "./gen/diego/cell/v1/cell_pb.js";
export * as auctioneerv1 from "./gen/diego/auctioneer/v1/auctioneer_pb.js";

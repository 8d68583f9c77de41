export * from "./grpc/index.js";
export * from "./authz/index.js";
export * from "./egress/index.js";
export * from "./logger.js";
export * from "./lifecycle.js";
export * from "./config.js";
export * from "./metrics.js";
export * from "./status-server.js";

export * from "./types.js";
export * from "./status.js";
export * from "./credentials.js";
export * from "./service-definition.js";
export * from "./client.js";
export * from "./failover-client.js";
export * from "./server.js";

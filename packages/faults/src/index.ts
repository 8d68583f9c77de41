export * from "./judge.js";
export * from "./report.js";
export * from "./effects.js";
export * from "./host-network.js";
export * from "./fault-cluster.js";
export * from "./workload.js";
export * from "./run-case.js";
export * from "./cases.js";

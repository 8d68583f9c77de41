// Simulation for tests and the benchmark: simulated cells over real gRPC and an in-memory BBS subset.
export * from "./simulated-cell-servers.js";
export * from "./fake-bbs.js";

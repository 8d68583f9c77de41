export * from "./types.js";
export * from "./score.js";
export * from "./order.js";
export * from "./schedule.js";

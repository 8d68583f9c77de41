export * from "./errors.js";
export * from "./duration.js";
export * from "./failure-reasons.js";
export * from "./root-fs.js";
export * from "./validation.js";
export * from "./state-machine.js";
export * from "./time.js";
export * from "./task-json.js";

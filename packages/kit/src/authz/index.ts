export * from "./identity.js";
export * from "./authorization-table.js";
export * from "./authorize.js";

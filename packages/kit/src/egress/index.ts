export * from "./egress-policy.js";
export * from "./egress-request.js";
export * from "./task-urls.js";

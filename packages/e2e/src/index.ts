export * from "./processes.js";
export * from "./cluster.js";
export * from "./tasks.js";
export * from "./invalid-requests.js";
export * from "./http-receiver.js";
export { certFiles, EtcdServer, eventually, freePort } from "@diego/testing";
export * from "./cli.js";
export * from "./image-cluster.js";

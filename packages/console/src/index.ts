export { ConsoleServer, type ConsoleBackend, type ConsoleOptions } from "./console-server.js";
export { bundleApp } from "./bundle.js";
export * from "./views.js";

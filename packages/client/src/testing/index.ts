// @diego/client/testing: the real BBS (@diego/bbs) in-process with simulated cells, for tests of programs
// that use the client. Only this entry needs @diego/bbs; the main entry (@diego/client) never imports it.
export { TestBbs, type TestBbsOptions } from "./test-bbs.js";
export { SimulatedCell, DEFAULT_CELL, type SimulatedCellSpec, type SimulatedRun } from "./simulated-cell.js";
export { BbsProxy, type BbsProxyOptions } from "./bbs-proxy.js";

// @diego/client/testing: for tests of programs that use the client. The in-process cluster of real parts
// (BBS, auctioneer, cells on the fake runtime), a private etcd, free ports and `eventually` come from the
// private @diego/testing; TestBbs is the real BBS with a hand-driven placement. Only this entry needs
// @diego/bbs and @diego/testing; the main entry (@diego/client) never imports them.
export { EtcdServer, eventually, freePort, InProcessCluster, type ClusterCell } from "@diego/testing";
export { TestBbs, type TestBbsOptions } from "./test-bbs.js";
export { SimulatedCell, DEFAULT_CELL, type SimulatedCellSpec, type SimulatedRun } from "./simulated-cell.js";
export { BbsProxy, type BbsProxyOptions } from "./bbs-proxy.js";

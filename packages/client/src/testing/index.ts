export { FakeBbs, type FakeBbsOptions, type SimulatedRun } from "./fake-bbs.js";

// One jest run over every package. Unit tests live in packages/*/test; tests that need a real etcd or
// Docker engine get them from test-support/global-setup.js (etcd started per run; Docker must be up,
// which scripts/test ensures).
const swc = [
  "@swc/jest",
  {
    jsc: { parser: { syntax: "typescript" }, target: "es2022" },
    module: { type: "es6" },
  },
];

export default {
  testEnvironment: "node",
  extensionsToTreatAsEsm: [".ts"],
  transform: { "^.+\\.ts$": swc },
  moduleNameMapper: { "^(\\.{1,2}/.*)\\.js$": "$1" },
  testMatch: ["<rootDir>/packages/*/test/**/*.test.ts"],
  globalSetup: "<rootDir>/test-support/global-setup.js",
  globalTeardown: "<rootDir>/test-support/global-teardown.js",
  testTimeout: 60_000,
};

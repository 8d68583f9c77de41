// Serves a BBS for trying the CLI by hand: the real one (@diego/bbs) on its memory store, with simulated
// cells that run every task (annotation "fail" fails it).
//   node --import tsx packages/cli/test/support/serve-test-bbs.ts [host:port] [certdir]
import { TestBbs } from "@diego/client/testing";

const [listenAddress = "127.0.0.1:0", certDir] = process.argv.slice(2);
const tls = certDir
  ? { caFile: `${certDir}/ca.crt`, certFile: `${certDir}/bbs.crt`, keyFile: `${certDir}/bbs.key` }
  : undefined;
const bbs = await TestBbs.start({
  listenAddress,
  tls,
  cells: [
    {
      cellId: "cell-1",
      zone: "z1",
      rootfsProviders: [{ scheme: "docker" }],
      total: { memoryMb: 1024, diskMb: 1024, containers: 10 },
      available: { memoryMb: 1024, diskMb: 1024, containers: 10 },
    },
  ],
});
bbs.autoRun = (task) => ({
  cellId: "cell-1",
  stepMs: 700,
  logs: [`running ${task.taskGuid}`],
  result: task.annotation === "fail" ? "" : "42",
  failed: task.annotation === "fail",
  failureReason: "DEMO: Exited with status 1",
  exitStatus: task.annotation === "fail" ? 1 : 0,
});
process.stdout.write(`BBS on ${bbs.address}\n`);
process.on("SIGTERM", () => void bbs.stop().then(() => process.exit(0)));

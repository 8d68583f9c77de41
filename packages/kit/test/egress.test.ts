import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { create } from "@bufbuild/protobuf";
import { TaskCreateRequestSchema } from "@diego/proto";
import { EgressDenied, EgressPolicy } from "../src/egress/egress-policy.js";
import { egressRequest } from "../src/egress/egress-request.js";
import { egressViolations } from "../src/egress/task-urls.js";

const policy = new EgressPolicy({ deny: ["10.9.0.0/16"], allow: ["127.0.0.2/32"] });

test.each([
  ["127.0.0.1", false],
  ["127.0.0.2", true], // operator allow list
  ["::1", false],
  ["::ffff:127.0.0.1", false],
  ["169.254.169.254", false],
  ["fe80::1", false],
  ["0.0.0.0", false],
  ["::", false],
  ["224.0.0.1", false],
  ["ff02::1", false],
  ["10.9.3.4", false], // operator deny list
  ["10.8.3.4", true],
  ["172.17.0.1", true],
  ["93.184.216.34", true],
  ["2001:db8::1", true],
])("%s allowed: %s", (address, allowed) => {
  expect(policy.refusal(address) === undefined).toBe(allowed);
});

test("a bad CIDR is refused at construction, naming it", () => {
  expect(() => new EgressPolicy({ deny: ["10.0.0.0/33"] })).toThrow('"10.0.0.0/33" is not a CIDR');
});

test("literal hosts in a denied range are INVALID_ARGUMENT material naming the field; names are judged later", () => {
  const req = create(TaskCreateRequestSchema, {
    completionCallbackUrl: "http://169.254.169.254/latest",
    action: {
      action: {
        case: "serial",
        value: {
          actions: [
            { action: { case: "download", value: { from: "http://[::1]:2379/x", to: "/x" } } },
            { action: { case: "upload", value: { from: "/x", to: "http://127.0.0.1:2479/v3/kv/put" } } },
            { action: { case: "download", value: { from: "http://example.com/x", to: "/y" } } },
          ],
        },
      },
    },
  });
  expect(egressViolations(req, new EgressPolicy()).map((v) => v.field)).toEqual([
    "completion_callback_url",
    "action.serial.actions[0].download.from",
    "action.serial.actions[1].upload.to",
  ]);
});

describe("requests", () => {
  let server: Server;
  let port: number;
  let hits: string[];
  beforeAll(async () => {
    hits = [];
    server = createServer((req, res) => {
      hits.push(req.url ?? "");
      if (req.url === "/to-loopback") res.writeHead(302, { location: `http://127.0.0.1:${port}/secret` }).end();
      else if (req.url === "/to-localhost") res.writeHead(302, { location: `http://localhost:${port}/secret` }).end();
      else if (req.url?.startsWith("/loop")) res.writeHead(302, { location: `/loop${hits.length}` }).end();
      else if (req.url === "/hop") res.writeHead(302, { location: "/ok" }).end();
      else res.end("ok");
    });
    await new Promise<void>((r) => server.listen(0, "0.0.0.0", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));
  // Loopback is the test's stand-in for an allowed host: 127.0.0.2 is allowed, 127.0.0.1 and localhost are not.
  const open = new EgressPolicy({ allow: ["127.0.0.2/32"] });

  test("an allowed address is reached, a redirect within the policy followed", async () => {
    const res = await egressRequest(open, `http://127.0.0.2:${port}/hop`, { timeoutMs: 5_000, maxRedirects: 3 });
    expect(res.status).toBe(200);
    expect(res.url).toBe(`http://127.0.0.2:${port}/ok`);
    res.body.resume();
  });

  test("a denied literal, a name resolving to a denied address, and a redirect to them are refused", async () => {
    hits.length = 0;
    await expect(egressRequest(open, `http://127.0.0.1:${port}/x`, { timeoutMs: 5_000 })).rejects.toBeInstanceOf(
      EgressDenied,
    );
    await expect(egressRequest(open, `http://localhost:${port}/x`, { timeoutMs: 5_000 })).rejects.toThrow(
      /localhost resolves to a denied address/,
    );
    for (const path of ["/to-loopback", "/to-localhost"])
      await expect(
        egressRequest(open, `http://127.0.0.2:${port}${path}`, { timeoutMs: 5_000, maxRedirects: 3 }),
      ).rejects.toBeInstanceOf(EgressDenied);
    expect(hits).toEqual(["/to-loopback", "/to-localhost"]);
  });

  test("redirects stop after the limit", async () => {
    await expect(
      egressRequest(open, `http://127.0.0.2:${port}/loop`, { timeoutMs: 5_000, maxRedirects: 2 }),
    ).rejects.toThrow("too many redirects (at most 2 are followed)");
  });
});

import { authorize } from "../src/authz/authorize.js";
import { AUTHORIZATION } from "../src/authz/authorization-table.js";
import { identityFromUri, identityOfCertificate, identityUri, type Identity } from "../src/authz/identity.js";
import { isLoopbackAddress } from "../src/grpc/server.js";

const cell1: Identity = { role: "cell", id: "cell-1" };
const client: Identity = { role: "client", id: "ci" };
const auctioneer: Identity = { role: "auctioneer", id: "" };
const bbs: Identity = { role: "bbs", id: "" };

test.each([
  ["diego://bbs", { role: "bbs", id: "" }],
  ["diego://auctioneer", { role: "auctioneer", id: "" }],
  ["diego://cell/cell-1", { role: "cell", id: "cell-1" }],
  ["diego://client/ci.bot_2", { role: "client", id: "ci.bot_2" }],
  ["diego://cell/", undefined],
  ["diego://cell", undefined],
  ["diego://bbs/x", undefined],
  ["diego://root", undefined],
  ["https://cell/cell-1", undefined],
  ["diego://cell/a/b", undefined],
])("identityFromUri(%s)", (uri, identity) => {
  expect(identityFromUri(uri)).toEqual(identity);
  if (identity) expect(identityUri(identity as Identity)).toBe(uri);
});

test("a certificate's identity is its one diego URI SAN; none or disagreeing ones give none", () => {
  expect(
    identityOfCertificate({ subjectaltname: "URI:diego://cell/cell-2, DNS:cell-2, IP Address:127.0.0.1" }),
  ).toEqual({
    role: "cell",
    id: "cell-2",
  });
  expect(identityOfCertificate({ subjectaltname: "DNS:cell, IP Address:127.0.0.1" })).toBeUndefined();
  expect(identityOfCertificate({ subjectaltname: "URI:diego://cell/a, URI:diego://cell/b" })).toBeUndefined();
  expect(identityOfCertificate({ subjectaltname: "URI:diego://bbs, URI:diego://nope" })).toBeUndefined();
  expect(identityOfCertificate(undefined)).toBeUndefined();
});

const path = (s: string) => `/diego.bbs.v1.${s}`;

test.each([
  // [rpc, request, identity, allowed]
  [path("TaskService/DesireTask"), {}, client, true],
  [path("TaskService/DesireTask"), {}, cell1, false],
  [path("TaskService/ListTasks"), { cellId: "cell-1" }, cell1, true],
  [path("TaskService/ListTasks"), { cellId: "" }, cell1, false],
  [path("CellService/ListCells"), {}, client, true],
  [path("CellService/ListCells"), {}, auctioneer, true],
  [path("TaskLifecycleService/StartTask"), { cellId: "cell-1" }, cell1, true],
  [path("TaskService/TaskBatch"), {}, client, true],
  [path("TaskService/TaskBatch"), {}, cell1, false],
  [path("TaskLifecycleService/LifecycleBatch"), { cellId: "cell-1" }, cell1, true],
  [path("TaskLifecycleService/LifecycleBatch"), { cellId: "cell-2" }, cell1, false],
  [path("TaskLifecycleService/LifecycleBatch"), { cellId: "" }, auctioneer, false],
  [path("TaskLifecycleService/LifecycleBatch"), { cellId: "cell-1" }, client, false],
  [path("TaskLifecycleService/StartTask"), { cellId: "cell-2" }, cell1, false],
  [path("TaskLifecycleService/StartTask"), { cellId: "cell-1" }, client, false],
  [path("TaskLifecycleService/CompleteTask"), { cellId: "cell-1" }, auctioneer, false],
  [path("TaskLifecycleService/RejectTask"), { cellId: "" }, auctioneer, true],
  [path("TaskLifecycleService/RejectTask"), { cellId: "cell-1" }, auctioneer, false],
  [path("TaskLifecycleService/RejectTask"), { cellId: "cell-1" }, cell1, true],
  [path("CellRegistryService/Heartbeat"), { cell: { cellId: "cell-1" } }, cell1, true],
  [path("CellRegistryService/Heartbeat"), { cell: { cellId: "cell-9" } }, cell1, false],
  [path("CellRegistryService/Heartbeat"), {}, cell1, false],
  [path("CellRegistryService/Deregister"), { cellId: "cell-2" }, cell1, false],
  [path("LockService/Lock"), { key: "auctioneer" }, auctioneer, true],
  [path("LockService/Lock"), { key: "bbs" }, auctioneer, false],
  [path("LockService/FetchLock"), { key: "auctioneer" }, client, false],
  ["/diego.auctioneer.v1.AuctioneerService/RequestTaskAuctions", {}, bbs, true],
  ["/diego.auctioneer.v1.AuctioneerService/RequestTaskAuctions", {}, client, false],
  ["/diego.cell.v1.CellRepService/Perform", {}, auctioneer, true],
  ["/diego.cell.v1.CellRepService/Perform", {}, cell1, false],
  ["/diego.cell.v1.CellRepService/CancelTask", {}, bbs, true],
  ["/diego.cell.v1.CellRepService/State", {}, client, false],
  ["/diego.unknown.v1.X/Y", {}, bbs, false],
])("%s %j by %j: allowed %s", (method, request, identity, allowed) => {
  const denial = authorize(AUTHORIZATION, method, request, identity);
  if (allowed) expect(denial).toBeUndefined();
  else expect(denial).toMatchObject({ code: "PERMISSION_DENIED" });
});

test("a refusal names the role needed, and the field for a cell acting as another", () => {
  expect(authorize(AUTHORIZATION, path("TaskLifecycleService/StartTask"), { cellId: "c" }, client)?.message).toBe(
    "/diego.bbs.v1.TaskLifecycleService/StartTask needs role cell; the caller is client ci",
  );
  expect(authorize(AUTHORIZATION, path("TaskLifecycleService/StartTask"), { cellId: "cell-2" }, cell1)?.message).toBe(
    '/diego.bbs.v1.TaskLifecycleService/StartTask: cell cell-1 may act only as itself; cell_id is "cell-2"',
  );
  expect(authorize(AUTHORIZATION, path("TaskService/GetTask"), {}, undefined)?.message).toContain(
    "names no diego:// identity",
  );
});

test.each([
  ["127.0.0.1:8889", true],
  ["127.3.0.1:0", true],
  ["localhost:1800", true],
  ["[::1]:1800", true],
  ["0.0.0.0:8889", false],
  ["[::]:8889", false],
  ["10.0.0.5:1800", false],
  ["cell-1:1800", false],
])("isLoopbackAddress(%s) is %s", (address, loopback) => {
  expect(isLoopbackAddress(address)).toBe(loopback);
});

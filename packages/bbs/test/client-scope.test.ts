import type { Identity } from "@diego/kit";
import { checkDesire, checkDomainNamed, clientScopesFrom, maySee } from "../src/handlers/client-scope.js";

// The client scopes' rules (docs/security.md, "Client scopes"), as a table.
const scopes = clientScopesFrom({ clientDomains: { ci: "builds|tests", none: "" }, privilegedClients: ["ops"] });
const client = (id: string): Identity => ({ role: "client", id });
const cell: Identity = { role: "cell", id: "cell-1" };

test.each([
  ["a limited client, its domain", client("ci"), "builds", true],
  ["a limited client, another domain", client("ci"), "web", false],
  ["a limited client, every domain", client("ci"), "", false],
  ["a client limited to no domain", client("none"), "builds", false],
  ["a client not named", client("other"), "web", true],
  ["a cell (not a client)", cell, "web", true],
  ["no identity (plaintext)", undefined, "web", true],
])("%s: domain %p → allowed %p", (_what, identity, domain, allowed) => {
  expect(maySee(scopes, identity, domain)).toBe(allowed);
  const check = () => checkDomainNamed(scopes, identity, domain);
  if (allowed) expect(check).not.toThrow();
  else expect(check).toThrow(expect.objectContaining({ code: "PERMISSION_DENIED" }));
});

test.each([
  ["ops", true],
  ["ci", false],
  ["other", false],
])("client %p may desire a privileged task: %p", (id, allowed) => {
  const check = () => checkDesire(scopes, client(id), { domain: "builds", privileged: true });
  if (allowed) expect(check).not.toThrow();
  else expect(check).toThrow(/may not desire privileged tasks/);
});

test("without privilegedClients any client may desire privileged tasks; without an identity too", () => {
  const open = clientScopesFrom({ clientDomains: {} });
  expect(() => checkDesire(open, client("anyone"), { domain: "x", privileged: true })).not.toThrow();
  expect(() => checkDesire(open, undefined, { domain: "x", privileged: true })).not.toThrow();
  expect(() => checkDesire(scopes, undefined, { domain: "x", privileged: true })).toThrow(/this caller/);
});

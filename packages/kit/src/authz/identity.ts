import type { PeerCertificate } from "node:tls";

/** The roles a certificate can carry (docs/security.md). */
export const ROLES = ["bbs", "auctioneer", "cell", "client"] as const;
export type Role = (typeof ROLES)[number];

/**
 * Who is calling, as proved by the caller's certificate: its role and, for a cell or a client, its
 * id (`cell-1`, `ci-bot`). The BBS and the auctioneer have the empty id.
 */
export interface Identity {
  role: Role;
  id: string;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * The identity a URI names: `diego://bbs`, `diego://auctioneer`, `diego://cell/<id>`,
 * `diego://client/<name>`; undefined for anything else.
 */
export function identityFromUri(uri: string): Identity | undefined {
  const m = /^diego:\/\/([a-z]+)(?:\/([^/]*))?$/.exec(uri);
  if (!m) return undefined;
  const role = m[1] as Role;
  const id = m[2] ?? "";
  if (!ROLES.includes(role)) return undefined;
  if (role === "bbs" || role === "auctioneer") return id === "" ? { role, id } : undefined;
  return ID.test(id) ? { role, id } : undefined;
}

/** The URI SAN that names an identity (what scripts/make-certs writes). */
export function identityUri(identity: Identity): string {
  return identity.id ? `diego://${identity.role}/${identity.id}` : `diego://${identity.role}`;
}

/**
 * The identity of a peer certificate: its one `diego://` URI SAN. A certificate with none, or with
 * several that disagree, has no identity (and is refused every RPC but health and reflection).
 */
export function identityOfCertificate(cert: Pick<PeerCertificate, "subjectaltname"> | undefined): Identity | undefined {
  const names = (cert?.subjectaltname ?? "").split(/,\s*/);
  const found = names.filter((n) => n.startsWith("URI:diego://")).map((n) => identityFromUri(n.slice("URI:".length)));
  if (found.length === 0 || found.some((i) => !i)) return undefined;
  const [first] = found as Identity[];
  return found.every((i) => i!.role === first.role && i!.id === first.id) ? first : undefined;
}

/** `cell cell-1`, `auctioneer`: for messages and logs. */
export function describeIdentity(identity: Identity | undefined): string {
  if (!identity) return "a caller without a diego identity";
  return identity.id ? `${identity.role} ${identity.id}` : identity.role;
}

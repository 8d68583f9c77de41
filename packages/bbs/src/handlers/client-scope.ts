import type { Identity } from "@diego/kit";
import { DiegoError } from "@diego/models";

/**
 * What the operator lets client identities do beyond the authorization table (docs/security.md,
 * "Client scopes"): `domains` names, per client id, the only domains it may desire, read, watch and
 * cancel in; `privileged`, when set, names the only client ids that may desire privileged tasks.
 * A client not named in `domains` is not restricted to any domain.
 */
export interface ClientScopes {
  domains: Readonly<Record<string, readonly string[]>>;
  privileged?: readonly string[];
}

export const UNSCOPED: ClientScopes = { domains: {} };

/** The scopes from the BBS's settings: `clientDomains` (client → domains separated by `|`), `privilegedClients`. */
export function clientScopesFrom(settings: {
  clientDomains: Record<string, string>;
  privilegedClients?: string[];
}): ClientScopes {
  const domains: Record<string, string[]> = {};
  for (const [client, list] of Object.entries(settings.clientDomains)) {
    domains[client] = list
      .split("|")
      .map((d) => d.trim())
      .filter(Boolean);
  }
  return { domains, privileged: settings.privilegedClients };
}

/** The domains this caller is limited to, or undefined when it may use every domain. */
export function allowedDomains(scopes: ClientScopes, identity: Identity | undefined): readonly string[] | undefined {
  if (identity?.role !== "client") return undefined;
  return Object.hasOwn(scopes.domains, identity.id) ? scopes.domains[identity.id] : undefined;
}

/** Refuses (PERMISSION_DENIED) a DesireTask outside the caller's domains, or a privileged one it may not ask for. */
export function checkDesire(
  scopes: ClientScopes,
  identity: Identity | undefined,
  req: { domain: string; privileged: boolean },
): void {
  checkDomainNamed(scopes, identity, req.domain);
  if (req.privileged && scopes.privileged && !(identity && scopes.privileged.includes(identity.id))) {
    throw new DiegoError(
      "PERMISSION_DENIED",
      `${who(identity)} may not desire privileged tasks: the BBS allows them only for the clients named in --privileged-clients`,
    );
  }
}

/**
 * Refuses (PERMISSION_DENIED) a list or watch of a domain outside the caller's ones, and one of every
 * domain ("") when the caller is limited: it must name one of its domains.
 */
export function checkDomainNamed(scopes: ClientScopes, identity: Identity | undefined, domain: string): void {
  const allowed = allowedDomains(scopes, identity);
  if (!allowed || allowed.includes(domain)) return;
  const mine = allowed.length ? allowed.join(", ") : "none";
  throw new DiegoError(
    "PERMISSION_DENIED",
    domain
      ? `${who(identity)} may not use domain ${JSON.stringify(domain)} (its domains: ${mine})`
      : `${who(identity)} is limited to some domains (${mine}): name one in domain`,
  );
}

/** True when the caller may see a task of this domain (one it may not see is answered as not found). */
export function maySee(scopes: ClientScopes, identity: Identity | undefined, domain: string): boolean {
  const allowed = allowedDomains(scopes, identity);
  return !allowed || allowed.includes(domain);
}

function who(identity: Identity | undefined): string {
  return identity ? `client ${JSON.stringify(identity.id)}` : "this caller";
}

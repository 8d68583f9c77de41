import { DiegoError } from "@diego/models";
import type { AuthorizationTable, Grant } from "./authorization-table.js";
import { describeIdentity, type Identity, type Role } from "./identity.js";

/**
 * Whether `identity` may make the call `method` with `request`, by `table`: undefined when it may,
 * else the PERMISSION_DENIED error to answer, naming the role needed (pure).
 */
export function authorize(
  table: AuthorizationTable,
  method: string,
  request: unknown,
  identity: Identity | undefined,
): DiegoError | undefined {
  const rule = table[method];
  const roles = rule ? (Object.keys(rule) as Role[]) : [];
  const needed = roles.length ? `role ${roles.join(" or ")}` : "a role (no role may call it)";
  if (!identity) return denied(`${method} needs ${needed}; the caller's certificate names no diego:// identity`);
  const grant: Grant | undefined = rule?.[identity.role];
  if (!grant) return denied(`${method} needs ${needed}; the caller is ${describeIdentity(identity)}`);
  if (grant === true) return undefined;
  if ("ownId" in grant) {
    const value = fieldAt(request, grant.ownId);
    if (value === identity.id) return undefined;
    return denied(
      `${method}: ${describeIdentity(identity)} may act only as itself; ${snake(grant.ownId)} is ${JSON.stringify(value ?? "")}`,
    );
  }
  const value = fieldAt(request, grant.field);
  if (value === grant.equals) return undefined;
  return denied(
    `${method}: ${describeIdentity(identity)} may call it only with ${snake(grant.field)} ${JSON.stringify(grant.equals)}`,
  );
}

function denied(message: string): DiegoError {
  return new DiegoError("PERMISSION_DENIED", message);
}

function fieldAt(request: unknown, path: string): unknown {
  let value: unknown = request;
  for (const key of path.split(".")) value = (value as Record<string, unknown> | undefined)?.[key];
  return value;
}

function snake(path: string): string {
  return path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

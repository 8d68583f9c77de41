import { LIMITS, invalidArgument, labelsViolations, type FieldViolation } from "@diego/models";
import type { ListTasksRequest } from "@diego/proto";
import type { PageRequest, TaskFilter } from "../store/task-store.js";

const TOKEN_PREFIX = "g1:";
const GUID = /^[A-Za-z0-9_-]{1,255}$/;

/**
 * The opaque ListTasks page_token: the last guid of the page, base64url. Pages are in guid order, so
 * the next page starts after it whatever was added or removed in between (a task is listed at most
 * once; one added behind the position is not, and will show up in a watch).
 */
export function formatPageToken(lastGuid: string): string {
  return Buffer.from(TOKEN_PREFIX + lastGuid, "utf8").toString("base64url");
}

/** The guid a page_token continues after, or undefined when it is no token this BBS issued. Pure. */
export function parsePageToken(token: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(token) || token.length > 400) return undefined;
  const text = Buffer.from(token, "base64url").toString("utf8");
  if (!text.startsWith(TOKEN_PREFIX)) return undefined;
  const guid = text.slice(TOKEN_PREFIX.length);
  return GUID.test(guid) && formatPageToken(guid) === token ? guid : undefined;
}

/**
 * A ListTasks request as a filter and a page, or INVALID_ARGUMENT naming each bad field and its
 * limit (page_size, page_token, labels). Pure.
 */
export function listQuery(
  req: Pick<ListTasksRequest, "domain" | "cellId" | "state" | "labels" | "pageSize" | "pageToken">,
): {
  filter: TaskFilter;
  page: PageRequest;
} {
  const violations: FieldViolation[] = [];
  const bad = (field: string, message: string) => violations.push({ field, message });
  if (req.pageSize < 0) bad("page_size", "must be >= 0 (0: the default of " + LIMITS.listPageSizeDefault + ")");
  else if (req.pageSize > LIMITS.listPageSizeMax) bad("page_size", `must be at most ${LIMITS.listPageSizeMax}`);
  let after = "";
  if (req.pageToken) {
    const guid = parsePageToken(req.pageToken);
    if (guid === undefined) bad("page_token", "is not a next_page_token this BBS issued; start again with none");
    else after = guid;
  }
  labelsViolations(req.labels, "labels", bad);
  if (violations.length) throw invalidArgument(violations);
  return {
    filter: {
      domain: req.domain,
      cellId: req.cellId,
      state: req.state,
      labels: Object.keys(req.labels).length ? req.labels : undefined,
    },
    page: { after, limit: req.pageSize || LIMITS.listPageSizeDefault, maxBytes: LIMITS.listPageBytes },
  };
}

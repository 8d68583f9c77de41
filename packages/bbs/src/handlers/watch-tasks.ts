import type { CallContext } from "@diego/kit";
import { invalidArgument, labelsViolations, type FieldViolation } from "@diego/models";
import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

/**
 * Every change from now on (from the etcd watch, so writes of every BBS instance) matching the
 * domain and labels selector; the live marker first; after a resume_token, the kept events after it.
 */
export const watchTasks = ({ hub }: HandlerDeps): TaskServiceImpl["watchTasks"] =>
  async function* (req, ctx) {
    const violations: FieldViolation[] = [];
    labelsViolations(req.labels, "labels", (field, message) => violations.push({ field, message }));
    if (violations.length) throw invalidArgument(violations);
    const subscription = hub.subscribe({ domain: req.domain, labels: req.labels }, callerOf(ctx), req.resumeToken);
    const close = () => subscription.close();
    ctx.signal.addEventListener("abort", close, { once: true });
    try {
      yield* subscription;
    } finally {
      ctx.signal.removeEventListener("abort", close);
      subscription.close();
    }
  };

/** Who is calling, for per-caller caps: the certificate's identity, else the peer's host. */
export function callerOf(ctx: CallContext): string {
  if (ctx.identity) return `${ctx.identity.role}/${ctx.identity.id}`;
  const peer = ctx.peer;
  const colon = peer.lastIndexOf(":");
  return colon > 0 ? peer.slice(0, colon) : peer;
}

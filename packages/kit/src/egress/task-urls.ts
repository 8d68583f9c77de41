import type { Action, TaskCreateRequest } from "@diego/proto";
import type { FieldViolation } from "@diego/models";
import type { EgressPolicy } from "./egress-policy.js";

/** Every URL a task asks the system to request on its behalf, with the field that names it. */
export function taskUrls(
  req: Pick<TaskCreateRequest, "completionCallbackUrl" | "action">,
): Array<{ field: string; url: string }> {
  const out: Array<{ field: string; url: string }> = [];
  if (req.completionCallbackUrl) out.push({ field: "completion_callback_url", url: req.completionCallbackUrl });
  const visit = (action: Action | undefined, path: string, depth: number) => {
    if (!action || depth > 64) return;
    const inner = action.action;
    switch (inner.case) {
      case "download":
        out.push({ field: `${path}.download.from`, url: inner.value.from });
        return;
      case "upload":
        out.push({ field: `${path}.upload.to`, url: inner.value.to });
        return;
      case "timeout":
      case "try":
        return visit(inner.value.action, `${path}.${inner.case}.action`, depth + 1);
      case "emitProgress":
        return visit(inner.value.action, `${path}.emit_progress.action`, depth + 1);
      case "serial":
      case "parallel":
      case "codependent":
        inner.value.actions.forEach((a, i) => visit(a, `${path}.${inner.case}.actions[${i}]`, depth + 1));
        return;
      default:
        return;
    }
  };
  visit(req.action, "action", 0);
  return out;
}

/** The task's URLs whose host is an IP literal the policy refuses: INVALID_ARGUMENT violations naming each field. */
export function egressViolations(
  req: Pick<TaskCreateRequest, "completionCallbackUrl" | "action">,
  policy: EgressPolicy,
): FieldViolation[] {
  return taskUrls(req).flatMap(({ field, url }) => {
    const refusal = policy.refusalOfUrlLiteral(url);
    return refusal ? [{ field, message: `is refused by the egress policy: ${refusal}` }] : [];
  });
}

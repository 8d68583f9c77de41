import { DiegoError, taskNotFound } from "@diego/models";
import type { CallContext } from "@diego/kit";
import type { TaskController } from "../controller/task-controller.js";
import { allowedDomains, checkDesire, checkDomainNamed, maySee, type ClientScopes } from "./client-scope.js";
import type { TaskServiceImpl } from "./deps.js";

/**
 * The client API with the operator's client scopes applied before each handler (docs/security.md,
 * "Client scopes"): a desire outside the caller's domains or a privileged one it may not ask for is
 * PERMISSION_DENIED; a list or watch must name one of its domains (the one, when it has one); a task of another domain is answered
 * as not found, so that a limited client cannot learn what other domains hold.
 */
export function scopedTaskApi(api: TaskServiceImpl, scopes: ClientScopes, controller: TaskController): TaskServiceImpl {
  if (Object.keys(scopes.domains).length === 0 && !scopes.privileged) return api;
  // A client limited to one domain that names none gets that one; else the domain it names must be its own.
  const withDomain = <R extends { domain: string }>(req: R, ctx: CallContext): R => {
    const allowed = allowedDomains(scopes, ctx.identity);
    if (!req.domain && allowed?.length === 1) return { ...req, domain: allowed[0]! };
    checkDomainNamed(scopes, ctx.identity, req.domain);
    return req;
  };
  const visible = async (guid: string, ctx: CallContext) => {
    const task = await controller.get(guid);
    if (!maySee(scopes, ctx.identity, task.domain)) throw taskNotFound(guid);
  };
  return {
    desireTask: (req, ctx) => {
      checkDesire(scopes, ctx.identity, { domain: req.domain, privileged: req.privileged });
      return api.desireTask(req, ctx);
    },
    listTasks: (req, ctx) => api.listTasks(withDomain(req, ctx), ctx),
    watchTasks: (req, ctx) => api.watchTasks(withDomain(req, ctx), ctx),
    getTask: async (req, ctx) => {
      const task = await api.getTask(req, ctx);
      if (!maySee(scopes, ctx.identity, task.domain ?? "")) throw taskNotFound(req.taskGuid);
      return task;
    },
    cancelTask: async (req, ctx) => (await visible(req.taskGuid, ctx), api.cancelTask(req, ctx)),
    resolvingTask: async (req, ctx) => (await visible(req.taskGuid, ctx), api.resolvingTask(req, ctx)),
    deleteTask: async (req, ctx) => (await visible(req.taskGuid, ctx), api.deleteTask(req, ctx)),
    // A batch is refused whole when one of its items is outside the caller's scope (nothing of it is done).
    taskBatch: async (req, ctx) => {
      for (const [i, item] of req.items.entries()) {
        const call = item.call;
        try {
          if (call.case === "desire") checkDesire(scopes, ctx.identity, call.value);
          else if (call.case) await visible(call.value.taskGuid, ctx);
        } catch (err) {
          if (!DiegoError.is(err)) throw err;
          throw new DiegoError(err.code, `items[${i}]: ${err.message}`, err.violations);
        }
      }
      return api.taskBatch(req, ctx);
    },
    taskLogs: async function* (req, ctx) {
      await visible(req.taskGuid, ctx);
      yield* api.taskLogs(req, ctx);
    },
  };
}

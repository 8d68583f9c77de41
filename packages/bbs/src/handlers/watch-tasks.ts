import type { HandlerDeps, TaskServiceImpl } from "./deps.js";

/** Every change from now on (from the etcd watch, so writes of every BBS instance), by domain when set. */
export const watchTasks = ({ hub }: HandlerDeps): TaskServiceImpl["watchTasks"] =>
  async function* (req, ctx) {
    const subscription = hub.subscribe(req.domain);
    const close = () => subscription.close();
    ctx.signal.addEventListener("abort", close, { once: true });
    try {
      yield* subscription;
    } finally {
      ctx.signal.removeEventListener("abort", close);
      subscription.close();
    }
  };

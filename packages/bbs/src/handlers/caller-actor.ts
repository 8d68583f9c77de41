import type { CallContext } from "@diego/kit";
import type { Actor } from "@diego/models";

/**
 * The state machine's actor for a call: the role the caller's certificate proves under mutual TLS; without
 * TLS (the local plaintext cluster, where callers are not authenticated) the party the RPC's service
 * stands for. The transition table then refuses a transition this actor may not make (docs/contract.md).
 */
export function callerActor(context: Pick<CallContext, "identity"> | undefined, service: Actor): Actor {
  return context?.identity?.role ?? service;
}

import { callerActor } from "../src/handlers/caller-actor.js";
import { startTask } from "../src/handlers/start-task.js";
import type { HandlerDeps } from "../src/handlers/deps.js";

describe("the actor of a call", () => {
  test.each([
    [undefined, "cell", "cell"],
    [{}, "client", "client"],
    [{ identity: { role: "client", id: "ci" } }, "cell", "client"],
    [{ identity: { role: "auctioneer", id: "" } }, "cell", "auctioneer"],
    [{ identity: { role: "cell", id: "cell-1" } }, "client", "cell"],
  ] as const)("context %j on a %s RPC acts as %s", (context, service, expected) => {
    expect(callerActor(context, service)).toBe(expected);
  });

  test("a handler hands the caller's role to the controller (the table refuses what it may not do)", async () => {
    const seen: unknown[] = [];
    const controller = { start: (...args: unknown[]) => seen.push(args) } as unknown as HandlerDeps["controller"];
    const handler = startTask({ controller } as HandlerDeps);
    await handler({ taskGuid: "g", cellId: "c" } as never, { identity: { role: "client", id: "x" } } as never);
    expect(seen).toEqual([["g", "c", "client"]]);
  });
});

import { DiegoError } from "@diego/models";
import { attemptOrder, shouldFailOver, splitAddresses } from "../src/grpc/failover-client.js";

test.each([
  ["127.0.0.1:8889", ["127.0.0.1:8889"]],
  ["127.0.0.1:8889,127.0.0.1:8891", ["127.0.0.1:8889", "127.0.0.1:8891"]],
  [" a:1 , b:2 ,", ["a:1", "b:2"]],
])("splitAddresses(%j)", (input, expected) => {
  expect(splitAddresses(input)).toEqual(expected);
});

test.each([
  [3, 0, [0, 1, 2]],
  [3, 1, [1, 2, 0]],
  [3, 2, [2, 0, 1]],
  [1, 0, [0]],
])("attemptOrder(%d, %d)", (count, preferred, expected) => {
  expect(attemptOrder(count, preferred)).toEqual(expected);
});

test.each([
  ["UNAVAILABLE", false, true],
  ["DEADLINE_EXCEEDED", false, true],
  ["UNAVAILABLE", true, false],
  ["NOT_FOUND", false, false],
  ["FAILED_PRECONDITION", false, false],
  ["INVALID_ARGUMENT", false, false],
] as const)("shouldFailOver(%s, aborted %s) = %s", (code, aborted, expected) => {
  const signal = aborted ? AbortSignal.abort() : undefined;
  expect(shouldFailOver(new DiegoError(code, "x"), signal)).toBe(expected);
});

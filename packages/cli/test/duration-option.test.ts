import { parseDurationOption } from "../src/duration-option.js";

test.each([
  ["500ms", 500],
  ["2s", 2_000],
  ["1m30s", 90_000],
])("%s is %d ms", (text, ms) => {
  expect(parseDurationOption("--timeout", text, "10s")).toBe(ms);
});

test.each(["soon", "0s", "-1s", ""])("%j is refused, naming the flag and the examples", (text) => {
  expect(() => parseDurationOption("--poll-interval", text, "500ms or 2s")).toThrow(
    expect.objectContaining({
      code: "INVALID_ARGUMENT",
      violations: [
        { field: "--poll-interval", message: `must be a duration such as 500ms or 2s (got ${JSON.stringify(text)})` },
      ],
    }),
  );
});

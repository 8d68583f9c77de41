import { invalidArgument, type FieldViolation } from "@diego/models";

/** Commander's collector for a repeatable option (`--label a=1 --label b=2`). */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/**
 * `--label key=value` options as a labels selector; INVALID_ARGUMENT naming `--label` for one without
 * `=` or a key, or a key given twice with different values (the BBS checks the limits). Pure.
 */
export function parseLabelOptions(values: readonly string[] = []): Record<string, string> | undefined {
  if (values.length === 0) return undefined;
  const labels: Record<string, string> = {};
  const violations: FieldViolation[] = [];
  for (const text of values) {
    const eq = text.indexOf("=");
    if (eq <= 0) {
      violations.push({ field: "--label", message: `must be key=value (got ${JSON.stringify(text)})` });
      continue;
    }
    const key = text.slice(0, eq);
    const value = text.slice(eq + 1);
    if (Object.hasOwn(labels, key) && labels[key] !== value)
      violations.push({ field: "--label", message: `gives ${JSON.stringify(key)} twice, with different values` });
    labels[key] = value;
  }
  if (violations.length) throw invalidArgument(violations);
  return labels;
}

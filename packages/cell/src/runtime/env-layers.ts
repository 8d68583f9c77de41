/**
 * Merges NAME=value lists, later lists (and later entries) winning: one entry per name, at the place the
 * name first appears. An entry without `=` is a name with an empty value.
 */
export function layerEnv(...layers: readonly (readonly string[])[]): string[] {
  const values = new Map<string, string>();
  for (const layer of layers)
    for (const entry of layer) {
      const eq = entry.indexOf("=");
      const name = eq < 0 ? entry : entry.slice(0, eq);
      values.set(name, eq < 0 ? "" : entry.slice(eq + 1));
    }
  return [...values].map(([name, value]) => `${name}=${value}`);
}

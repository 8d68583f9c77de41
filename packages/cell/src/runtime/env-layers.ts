/**
 * Merges NAME=value lists, later lists (and later entries) winning: one entry per name, at the place the
 * name first appears. An entry without `=` is a name with an empty value.
 */
export function layerEnv(...layers: readonly (readonly string[])[]): string[] {
  return [...envValues(...layers)].map(([name, value]) => `${name}=${value}`);
}

/** The same merge as layerEnv, as name → value. */
export function envValues(...layers: readonly (readonly string[])[]): Map<string, string> {
  const values = new Map<string, string>();
  for (const layer of layers)
    for (const entry of layer) {
      const name = nameOf(entry);
      values.set(name, entry.length > name.length ? entry.slice(name.length + 1) : "");
    }
  return values;
}

/**
 * The env the engine gives a container created with `env` from an image whose env is `imageEnv`: `env`
 * as given, then the image's entries whose names it does not have.
 */
export function createdEnv(env: readonly string[], imageEnv: readonly string[]): string[] {
  const names = new Set(env.map(nameOf));
  return [...env, ...imageEnv.filter((e) => !names.has(nameOf(e)))];
}

function nameOf(entry: string): string {
  const eq = entry.indexOf("=");
  return eq < 0 ? entry : entry.slice(0, eq);
}

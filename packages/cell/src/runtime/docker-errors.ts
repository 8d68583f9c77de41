/** The engine's own words for an error (dockerode puts them in `json.message`). */
export function engineMessage(err: unknown): string {
  const json = (err as { json?: { message?: string } })?.json;
  return json?.message ?? (err as Error)?.message ?? String(err);
}

export function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number })?.statusCode;
}

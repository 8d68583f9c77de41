import { DiegoError } from "@diego/models";

/** The lines `diego` prints on stderr for an error: what went wrong, the bad fields, and a hint when one helps. */
export function describeError(err: unknown, address: string, context = "", tls = false): string {
  const prefix = `diego: ${context}`;
  if (!(err instanceof DiegoError)) return `${prefix}${(err as Error)?.message ?? String(err)}\n`;
  switch (err.code) {
    case "INVALID_ARGUMENT":
      if (err.violations.length) {
        return `${prefix}invalid request:\n${err.violations.map((v) => `  ${v.field}: ${v.message}\n`).join("")}`;
      }
      return `${prefix}${err.message}\n`;
    case "UNAVAILABLE":
    case "DEADLINE_EXCEEDED": {
      const detail = err.message.replace(`BBS at ${address}: `, "");
      const hint = tls
        ? "diego: is the BBS running there with mutual TLS, is its certificate signed by --ca-file, and does it trust the CA of --cert-file?\n"
        : "diego: is the BBS running there? Set --bbs-address or DIEGO_BBS_ADDR; a BBS with mutual TLS also needs --ca-file, --cert-file and --key-file.\n";
      return `${prefix}cannot reach the BBS at ${address}: ${detail}\n${hint}`;
    }
    default:
      return `${prefix}${err.message}\n`;
  }
}

/** An error with where it happened (`task file hello.json: `), printed before its message. */
export class ContextError extends Error {
  constructor(
    readonly context: string,
    override readonly cause: unknown,
  ) {
    super(`${context}${(cause as Error)?.message ?? String(cause)}`);
  }
}

export function unwrap(err: unknown): { context: string; error: unknown } {
  return err instanceof ContextError ? { context: err.context, error: err.cause } : { context: "", error: err };
}

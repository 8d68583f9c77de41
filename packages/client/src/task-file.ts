import { fromJson, type DescField, type DescMessage, type JsonValue } from "@bufbuild/protobuf";
import { TaskCreateRequestSchema, type TaskCreateRequest } from "@diego/proto";
import { DiegoError, invalidArgument, taskCreateRequestViolations, type FieldViolation } from "@diego/models";

export interface ParseTaskFileOptions {
  /** Also apply the BBS's validation rules (docs/contract.md, task fields) so that a bad file fails before any call. Default true. */
  validate?: boolean;
}

/**
 * Turns the TaskCreateRequest JSON of docs/contract.md (snake_case names as users write them; the proto3 JSON
 * camelCase names are accepted too) into the message. Every problem is reported at once as
 * INVALID_ARGUMENT with one violation per bad field, named by its path as written in the file
 * (`action.run.args[1]`, `env[0].name`). Text that is not JSON is INVALID_ARGUMENT with the line and column.
 */
export function parseTaskFile(text: string, options: ParseTaskFileOptions = {}): TaskCreateRequest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DiegoError("INVALID_ARGUMENT", `not valid JSON: ${jsonSyntaxMessage(text, err as Error)}`);
  }
  const shapeViolations: FieldViolation[] = [];
  checkMessage(TaskCreateRequestSchema, json, "", shapeViolations);
  if (shapeViolations.length) throw invalidArgument(shapeViolations);

  let request: TaskCreateRequest;
  try {
    request = fromJson(TaskCreateRequestSchema, json as JsonValue);
  } catch (err) {
    // checkMessage mirrors every rule of fromJson; this is a backstop that still says what is wrong.
    throw invalidArgument([{ field: "(task)", message: decodeMessage(err) }]);
  }
  if (options.validate !== false) {
    const violations = taskCreateRequestViolations(request);
    if (violations.length) throw invalidArgument(violations);
  }
  return request;
}

/**
 * Walks the JSON against the message descriptor and reports each unknown key, wrong type and
 * doubly-set oneof under the path the user wrote. Scalars are checked by protobuf-es itself (a
 * one-field fromJson), so the accepted forms are exactly those of proto3 JSON.
 */
function checkMessage(desc: DescMessage, json: unknown, path: string, out: FieldViolation[]): void {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    out.push({ field: path || "(task)", message: `must be a JSON object, not ${kindOf(json)}` });
    return;
  }
  const oneofsSeen = new Map<string, string>();
  for (const [key, value] of Object.entries(json)) {
    const here = path ? `${path}.${key}` : key;
    const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
    if (!field) {
      out.push({ field: here, message: unknownFieldMessage(desc, key) });
      continue;
    }
    if (value === null) continue; // proto3 JSON: null means the default
    if (field.oneof) {
      const other = oneofsSeen.get(field.oneof.name);
      if (other !== undefined) {
        out.push({
          field: here,
          message: `only one of ${field.oneof.fields.map((f) => f.name).join(", ")} may be set (${other} is set too)`,
        });
        continue;
      }
      oneofsSeen.set(field.oneof.name, key);
    }
    checkField(desc, field, key, value, here, out);
  }
}

function checkField(
  desc: DescMessage,
  field: DescField,
  key: string,
  value: unknown,
  here: string,
  out: FieldViolation[],
): void {
  switch (field.fieldKind) {
    case "message":
      checkMessage(field.message, value, here, out);
      return;
    case "list":
      if (!Array.isArray(value)) {
        out.push({ field: here, message: `must be a list, not ${kindOf(value)}` });
        return;
      }
      value.forEach((item, i) => {
        if (field.listKind === "message") checkMessage(field.message, item, `${here}[${i}]`, out);
        else checkScalar(desc, key, [item], `${here}[${i}]`, out);
      });
      return;
    default:
      checkScalar(desc, key, value, here, out);
  }
}

function checkScalar(desc: DescMessage, key: string, value: unknown, here: string, out: FieldViolation[]): void {
  try {
    fromJson(desc, { [key]: value } as JsonValue);
  } catch (err) {
    out.push({ field: here, message: decodeMessage(err) });
  }
}

/** protobuf-es says `cannot decode field X.y from JSON: expected number (int32), got "abc"`; keep the part after the colon. */
function decodeMessage(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const at = text.indexOf("from JSON: ");
  return at >= 0 ? text.slice(at + "from JSON: ".length) : text;
}

function unknownFieldMessage(desc: DescMessage, key: string): string {
  const names = desc.fields.map((f) => f.name);
  const near = closest(key, names);
  return near ? `unknown field (did you mean ${near}?)` : `unknown field; known fields: ${names.join(", ")}`;
}

/** The known name nearest to a mistyped one, if it is near enough to be a likely typo. */
function closest(key: string, names: string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[_-]/g, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const name of names) {
    const d = editDistance(norm(key), norm(name));
    if (d < bestDistance) [best, bestDistance] = [name, d];
  }
  return bestDistance <= Math.max(1, Math.floor(key.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

function kindOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `${typeof value} ${JSON.stringify(value)}`;
}

/** V8's message with `at line L column C` in place of `at position N` when it gives one. */
function jsonSyntaxMessage(text: string, err: Error): string {
  const match = / in JSON at position (\d+)/.exec(err.message);
  if (!match) return err.message.length > 200 ? `${err.message.slice(0, 200)}…` : err.message;
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split("\n").length;
  const column = position - before.lastIndexOf("\n");
  return `${err.message.slice(0, match.index)} at line ${line} column ${column}`;
}

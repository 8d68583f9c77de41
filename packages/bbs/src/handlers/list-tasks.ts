import { create } from "@bufbuild/protobuf";
import { WireType } from "@bufbuild/protobuf/wire";
import { ListTasksResponseSchema, type ListTasksResponse } from "@diego/proto";
import type { HandlerDeps, TaskServiceImpl } from "./deps.js";
import { formatPageToken, listQuery } from "./list-page.js";

/**
 * Filters by domain, cell_id, state and every labels pair (empty filters match all); one page in guid
 * order, bounded by page_size and by bytes; next_page_token is empty on the last page.
 */
export const listTasks =
  ({ controller }: HandlerDeps): TaskServiceImpl["listTasks"] =>
  (req) => {
    const { filter, page } = listQuery(req);
    const { tasks, lastGuid, more } = controller.listPageEncoded(filter, page);
    return encodedListResponse(tasks, more ? formatPageToken(lastGuid) : "");
  };

/**
 * A ListTasksResponse whose `tasks` (field 1) are the stored Task bytes, carried as protobuf-es
 * unknown fields: toBinary writes them verbatim, so the wire message is exactly the one a list of
 * decoded tasks would give (clients decode it as usual), without the BBS decoding and re-encoding
 * a thousand tasks per call.
 */
export function encodedListResponse(tasks: Uint8Array[], nextPageToken = ""): ListTasksResponse {
  const message = create(ListTasksResponseSchema, { nextPageToken });
  if (tasks.length === 0) return message;
  let size = 0;
  for (const t of tasks) size += 1 + varintSize(t.length) + t.length;
  const data = new Uint8Array(size - 1); // the first tag is written by toBinary from the unknown field's number
  let pos = 0;
  tasks.forEach((t, i) => {
    if (i > 0) data[pos++] = (1 << 3) | WireType.LengthDelimited;
    pos = writeVarint(data, pos, t.length);
    data.set(t, pos);
    pos += t.length;
  });
  message.$unknown = [{ no: 1, wireType: WireType.LengthDelimited, data }];
  return message;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n >>>= 7;
    size++;
  }
  return size;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

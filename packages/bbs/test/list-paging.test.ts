import { LIMITS } from "@diego/models";
import { create } from "@bufbuild/protobuf";
import { ListTasksRequestSchema, TaskSchema, TaskState } from "@diego/proto";
import { formatPageToken, listQuery, parsePageToken } from "../src/handlers/list-page.js";
import { SortedStrings } from "../src/store/sorted-strings.js";
import { entryOf, encodeTask } from "../src/store/task-entry.js";
import { TaskIndex } from "../src/store/task-index.js";

describe("SortedStrings", () => {
  test("keeps random adds and deletes in order across chunk splits, and reads from any position", () => {
    const set = new SortedStrings(4);
    const model = new Set<string>();
    let seed = 7;
    const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let i = 0; i < 3000; i++) {
      const v = `g${Math.floor(rand() * 400)}`;
      if (rand() < 0.6) {
        expect(set.add(v)).toBe(!model.has(v));
        model.add(v);
      } else {
        expect(set.delete(v)).toBe(model.has(v));
        model.delete(v);
      }
      expect(set.has(v)).toBe(model.has(v));
    }
    const sorted = [...model].sort();
    expect([...set.after()]).toEqual(sorted);
    expect(set.size).toBe(sorted.length);
    for (const from of ["", "g1", "g200", sorted[10], sorted.at(-1)!, "h"]) {
      expect([...set.after(from)]).toEqual(sorted.filter((s) => s > from));
    }
  });

  test.each([
    ["empty", [], "", []],
    ["after the last", ["a", "b"], "b", []],
    ["between", ["a", "c", "e"], "b", ["c", "e"]],
    ["on one", ["a", "c", "e"], "c", ["e"]],
    ["before the first", ["b"], "a", ["b"]],
  ])("after(): %s", (_name, values, from, expected) => {
    const set = new SortedStrings(2);
    for (const v of values as string[]) set.add(v);
    expect([...set.after(from as string)]).toEqual(expected);
  });
});

describe("page_token", () => {
  test("round-trips a guid and refuses anything it did not issue", () => {
    expect(parsePageToken(formatPageToken("task-1_A"))).toBe("task-1_A");
    for (const bad of ["", "x", "!!!", Buffer.from("g2:task").toString("base64url"), formatPageToken("a b")]) {
      expect(parsePageToken(bad)).toBeUndefined();
    }
  });
});

describe("listQuery", () => {
  const req = (init: Parameters<typeof create<typeof ListTasksRequestSchema>>[1]) =>
    create(ListTasksRequestSchema, init);
  const fields = (init: Parameters<typeof req>[0]) => {
    try {
      listQuery(req(init));
      return [];
    } catch (err) {
      return (err as { violations: { field: string; message: string }[] }).violations.map(
        (v) => `${v.field}: ${v.message}`,
      );
    }
  };

  test.each([
    [{}, []],
    [{ pageSize: LIMITS.listPageSizeMax }, []],
    [{ pageSize: LIMITS.listPageSizeMax + 1 }, [`page_size: must be at most ${LIMITS.listPageSizeMax}`]],
    [{ pageSize: -1 }, [`page_size: must be >= 0 (0: the default of ${LIMITS.listPageSizeDefault})`]],
    [{ pageToken: "nope" }, ["page_token: is not a next_page_token this BBS issued; start again with none"]],
    [{ pageToken: formatPageToken("t-9") }, []],
    [{ labels: { "": "x" } }, ['labels[""]: a label key must not be empty']],
  ])("%j → %j", (init, expected) => {
    expect(fields(init)).toEqual(expected);
  });

  test("defaults, filters and the position", () => {
    const q = listQuery(
      req({ domain: "d", state: TaskState.RUNNING, labels: { a: "1" }, pageToken: formatPageToken("t-3") }),
    );
    expect(q.filter).toEqual({ domain: "d", cellId: "", state: TaskState.RUNNING, labels: { a: "1" } });
    expect(q.page).toEqual({ after: "t-3", limit: LIMITS.listPageSizeDefault, maxBytes: LIMITS.listPageBytes });
  });
});

describe("TaskIndex.page", () => {
  const index = new TaskIndex();
  let rev = 0;
  const put = (guid: string, domain: string, labels: Record<string, string> = {}, annotation = "") => {
    const task = create(TaskSchema, { taskGuid: guid, domain, labels, annotation, state: TaskState.PENDING });
    index.put(entryOf(task, encodeTask(task), ++rev));
  };
  for (let i = 0; i < 100; i++)
    put(`t-${String(i).padStart(3, "0")}`, i % 10 === 0 ? "rare" : "common", { even: String(i % 2 === 0) });

  const all = (filter: Parameters<TaskIndex["page"]>[0], limit: number, maxBytes = 1 << 30) => {
    const pages: string[][] = [];
    let after = "";
    for (;;) {
      const { entries, more } = index.page(filter, { after, limit, maxBytes });
      pages.push(entries.map((e) => e.guid));
      if (!more) return pages;
      after = entries.at(-1)!.guid;
    }
  };

  test.each([
    ["every task", {}, 100],
    ["a small domain (sorted from its index set)", { domain: "rare" }, 10],
    ["a large domain (walked in order)", { domain: "common" }, 90],
    ["labels", { labels: { even: "true" } }, 50],
    ["domain and labels", { domain: "rare", labels: { even: "true" } }, 10],
    ["no match", { labels: { even: "maybe" } }, 0],
  ])("%s: pages in guid order, each task once, no empty last page", (_name, filter, count) => {
    const pages = all(filter, 7);
    const guids = pages.flat();
    expect(guids).toHaveLength(count);
    expect(guids).toEqual([...guids].sort());
    expect(new Set(guids).size).toBe(count);
    if (count > 0) expect(pages.at(-1)!.length).toBeGreaterThan(0);
    expect(pages.slice(0, -1).every((p) => p.length === 7)).toBe(true);
  });

  test("the byte budget cuts a page, which always holds at least one task", () => {
    const size = ["t-000", "t-001", "t-002"].reduce((n, g) => n + index.get(g)!.bytes.length, 0);
    expect(index.page({}, { after: "", limit: 50, maxBytes: size }).entries).toHaveLength(3);
    expect(index.page({}, { after: "", limit: 50, maxBytes: 1 }).entries).toHaveLength(1);
  });

  test("a removed guid still continues the walk after its place", () => {
    index.remove("t-050", ++rev, false);
    expect(index.page({}, { after: "t-050", limit: 2, maxBytes: 1 << 30 }).entries.map((e) => e.guid)).toEqual([
      "t-051",
      "t-052",
    ]);
  });
});

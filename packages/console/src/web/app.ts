// The console page (docs/console.md): a hash router over four views, filled from the console's JSON
// API and kept live by one server-sent event stream. Every value from a task is inserted as text,
// never as markup.

type Json = Record<string, unknown>;
type Child = Node | string | null | undefined | false;

const STATES = ["PENDING", "CLAIMED", "RUNNING", "COMPLETED", "RESOLVING"] as const;
const main = document.getElementById("main")!;
const live = document.getElementById("live")!;

/** An element with attributes and children; strings become text nodes. */
function h(tag: string, attrs: Record<string, string | boolean | ((e: Event) => void)> = {}, ...children: Child[]) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === "function") el.addEventListener(k, v);
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false) el.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

async function api(path: string, init?: RequestInit): Promise<Json> {
  const res = await fetch(path, { ...init, headers: { "x-diego-console": "1", ...(init?.headers ?? {}) } });
  const body = (await res.json().catch(() => ({}))) as Json;
  if (!res.ok) throw new Error(String(body.error ?? `${res.status} ${res.statusText}`));
  return body;
}

const str = (v: unknown) => (v === undefined || v === null ? "" : String(v));
const num = (v: unknown) => Number(v ?? 0);
function time(v: unknown): string {
  const n = typeof v === "string" && /^\d{13,}$/.test(v) && v.length > 15 ? Number(BigInt(v) / 1_000_000n) : num(v);
  return n ? new Date(n).toLocaleString() : "";
}
const taskLink = (guid: string) => h("a", { href: `#/tasks/${encodeURIComponent(guid)}` }, guid);

function outcome(t: Json): HTMLElement {
  if (t.state !== "COMPLETED" && t.state !== "RESOLVING") return h("span", { class: "muted" }, "—");
  if (!t.failed) return h("span", { class: "succeeded" }, "✓ succeeded");
  return h("span", { class: "failed" }, `✗ failed: ${str(t.failure_reason)}`);
}

// ---- the live stream ----------------------------------------------------------------------------

let cells: Json[] = [];
let leaders: Json = {};
let refresh: (() => void) | undefined;
let refreshTimer: number | undefined;
/** Re-reads the current view soon (at most every 300 ms) after something changed. */
function changed(): void {
  // Not while someone types in a filter: the next change after they leave it brings the view up to date.
  if (document.activeElement instanceof HTMLInputElement || document.activeElement instanceof HTMLSelectElement) return;
  if (refreshTimer !== undefined) return;
  refreshTimer = window.setTimeout(() => {
    refreshTimer = undefined;
    refresh?.();
  }, 300);
}

function connect(): void {
  const events = new EventSource("/api/events");
  events.onopen = () => (live.textContent = "Live: updates as they happen");
  events.addEventListener("live", () => (live.textContent = "Live: updates as they happen"));
  events.addEventListener("cells", (e) => {
    cells = JSON.parse((e as MessageEvent).data) as Json[];
    changed();
  });
  events.addEventListener("leaders", (e) => {
    leaders = JSON.parse((e as MessageEvent).data) as Json;
    changed();
  });
  events.addEventListener("task", () => changed());
  events.addEventListener(
    "problem",
    (e) => (live.textContent = `Problem: ${str(JSON.parse((e as MessageEvent).data).error)}`),
  );
  events.onerror = () => (live.textContent = "Reconnecting…");
}

// ---- views ----------------------------------------------------------------------------------------

function bar(label: string, used: number, total: number, unit: string): HTMLElement {
  return h(
    "div",
    { class: "bar" },
    h("span", {}, label),
    h("meter", { min: "0", max: String(Math.max(total, 1)), value: String(used), "aria-label": `${label} used` }),
    h("span", { class: "figures" }, `${used} / ${total}${unit} used`),
  );
}

function cellCard(c: Json): HTMLElement {
  const total = (c.total ?? {}) as Json;
  const avail = (c.available ?? {}) as Json;
  const used = (k: string) => num(total[k]) - num(avail[k]);
  const providers = ((c.rootfs_providers ?? []) as Json[])
    .map(
      (p) =>
        `${str(p.scheme)}${(p.names as string[] | undefined)?.length ? `:${(p.names as string[]).join(",")}` : ""}`,
    )
    .join(" ");
  const tags = [
    ...((c.placement_tags ?? []) as string[]),
    ...((c.optional_placement_tags ?? []) as string[]).map((t) => `${t} (optional)`),
  ];
  return h(
    "li",
    { class: "card", "data-cell": str(c.cell_id) },
    h("h3", {}, str(c.cell_id), c.draining ? " — draining" : ""),
    bar("Memory", used("memory_mb"), num(total.memory_mb), " MiB"),
    bar("Disk", used("disk_mb"), num(total.disk_mb), " MiB"),
    bar("Containers", used("containers"), num(total.containers), ""),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Tasks on it"),
      h("dd", {}, h("a", { href: `#/tasks?cell=${encodeURIComponent(str(c.cell_id))}` }, String(num(c.tasks_running)))),
      h("dt", {}, "Zone"),
      h("dd", {}, str(c.zone) || "—"),
      h("dt", {}, "Stacks"),
      h("dd", {}, ((c.stacks ?? []) as string[]).join(", ") || "—"),
      h("dt", {}, "Root filesystems"),
      h("dd", {}, providers || "—"),
      h("dt", {}, "Tags"),
      h("dd", {}, tags.join(", ") || "—"),
      h("dt", {}, "Privileged"),
      h("dd", {}, c.allow_privileged ? "allowed" : "not allowed"),
      h("dt", {}, "Address"),
      h("dd", {}, str(c.address)),
    ),
  );
}

function cellsSection(list: Json[]): HTMLElement {
  return h(
    "section",
    { "aria-labelledby": "cells-h" },
    h("h2", { id: "cells-h" }, `Cells (${list.length})`),
    list.length ? h("ul", { class: "cards" }, ...list.map(cellCard)) : h("p", {}, "No cell is alive."),
  );
}

function tasksTable(caption: string, tasks: Json[]): HTMLElement {
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", {}, caption),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ...["Task", "Domain", "State", "Cell", "Created", "Outcome"].map((c, i) =>
            h("th", { scope: "col", class: i === 4 ? "hide-narrow" : "" }, c),
          ),
        ),
      ),
      h(
        "tbody",
        {},
        ...tasks.map((t) =>
          h(
            "tr",
            { "data-task": str(t.task_guid) },
            h("td", {}, taskLink(str(t.task_guid))),
            h("td", {}, str(t.domain)),
            h("td", { class: "state" }, str(t.state)),
            h("td", {}, str(t.cell_id) || "—"),
            h("td", { class: "hide-narrow" }, time(t.created_at)),
            h("td", {}, outcome(t)),
          ),
        ),
      ),
    ),
  );
}

function countsList(counts: Json, base = "#/tasks"): HTMLElement {
  return h(
    "ul",
    { class: "counts", "aria-label": "Tasks by state" },
    ...STATES.map((s) =>
      h("li", {}, h("a", { href: `${base}?state=${s}`, "data-count": s }, h("strong", {}, String(num(counts[s]))), s)),
    ),
  );
}

function leadersSection(l: Json): HTMLElement {
  return h(
    "section",
    { "aria-labelledby": "leaders-h" },
    h("h2", { id: "leaders-h" }, "Leaders"),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "BBS (convergence)"),
      h("dd", { "data-leader": "bbs" }, str(l.bbs) || "none elected"),
      h("dt", {}, "Auctioneer"),
      h("dd", { "data-leader": "auctioneer" }, str(l.auctioneer) || "none active"),
    ),
  );
}

async function overview(): Promise<HTMLElement> {
  const o = await api("/api/overview");
  cells = o.cells as Json[];
  leaders = o.leaders as Json;
  document.getElementById("whoami")!.textContent =
    `Signed in as ${str(o.identity)}${o.can_cancel ? "" : " · read-only"}`;
  const failures = (o.placement_failures ?? []) as Json[];
  return h(
    "div",
    {},
    h("h1", {}, "Overview"),
    cellsSection(cells),
    h(
      "section",
      { "aria-labelledby": "counts-h" },
      h("h2", { id: "counts-h" }, "Tasks by state"),
      countsList(o.counts as Json),
    ),
    h(
      "section",
      { "aria-labelledby": "recent-h" },
      h("h2", { id: "recent-h" }, "Most recent tasks"),
      tasksTable("The ten newest tasks", o.recent as Json[]),
      h("p", {}, h("a", { href: "#/tasks" }, "All tasks →")),
    ),
    leadersSection(leaders),
    h(
      "section",
      { "aria-labelledby": "failures-h" },
      h("h2", { id: "failures-h" }, "Recent placement failures"),
      failures.length
        ? h(
            "ul",
            {},
            ...failures.map((f) =>
              h(
                "li",
                {},
                taskLink(str(f.task_guid)),
                ` (${str(f.domain)}, ${str(f.state)}, ${num(f.rejection_count)} rejections): `,
                str(f.reason),
              ),
            ),
          )
        : h("p", {}, "None."),
    ),
  );
}

async function cellsView(): Promise<HTMLElement> {
  const o = await api("/api/overview");
  return h("div", {}, h("h1", {}, "Cells"), cellsSection(o.cells as Json[]), leadersSection(o.leaders as Json));
}

async function tasksView(query: URLSearchParams): Promise<HTMLElement> {
  const res = await api(`/api/tasks?${query.toString()}`);
  const field = (name: string, label: string) =>
    h("label", {}, label, h("input", { name, value: query.get(name) ?? "", size: "14" }));
  const state = h(
    "select",
    { name: "state" },
    h("option", { value: "" }, "any"),
    ...STATES.map((s) => h("option", { value: s, selected: query.get("state") === s }, s)),
  );
  const form = h(
    "form",
    {
      class: "filters",
      role: "search",
      "aria-label": "Filter tasks",
      submit: (e: Event) => {
        e.preventDefault();
        const q = new URLSearchParams();
        for (const [k, v] of new FormData(e.target as HTMLFormElement)) if (String(v)) q.append(k, String(v));
        location.hash = `#/tasks?${q.toString()}`;
      },
    },
    field("domain", "Domain"),
    h("label", {}, "State", state),
    field("cell", "Cell"),
    field("label", "Label (key=value)"),
    h("button", { type: "submit" }, "Filter"),
  );
  const next = str(res.next_page_token);
  const offset = Number(query.get("page_token") || 0);
  const pageLink = (token: string, text: string) => {
    const q = new URLSearchParams(query);
    q.set("page_token", token);
    return h("a", { href: `#/tasks?${q.toString()}` }, text);
  };
  return h(
    "div",
    {},
    h("h1", {}, "Tasks"),
    form,
    countsList(res.counts as Json),
    tasksTable(`${num(res.total)} tasks, newest first`, res.tasks as Json[]),
    h(
      "div",
      { class: "pager" },
      offset > 0 && pageLink(String(Math.max(offset - 25, 0)), "← Newer"),
      next && pageLink(next, "Older →"),
    ),
  );
}

let logStream: EventSource | undefined;
let logGuid = "";
const logLines: HTMLElement = h("pre", { id: "logs", "aria-label": "Log lines" });

function followLogs(guid: string): void {
  if (logGuid === guid && logStream) return;
  logStream?.close();
  logGuid = guid;
  logLines.replaceChildren();
  const status = document.getElementById("log-status");
  logStream = new EventSource(`/api/tasks/${encodeURIComponent(guid)}/logs`);
  logStream.addEventListener("line", (e) => {
    const l = JSON.parse((e as MessageEvent).data) as Json;
    logLines.append(h("span", { class: str(l.stream) }, `${str(l.message)}\n`));
  });
  const end = (text: string) => () => {
    logStream?.close();
    const s = document.getElementById("log-status");
    if (s) s.textContent = text;
  };
  logStream.addEventListener("end", end("End of the task's output."));
  logStream.addEventListener("problem", (e) =>
    end(`Logs unavailable: ${str(JSON.parse((e as MessageEvent).data).error)}`)(),
  );
  if (status) status.textContent = "Following…";
}

async function taskView(guid: string): Promise<HTMLElement> {
  const res = await api(`/api/tasks/${encodeURIComponent(guid)}`);
  const t = res.task as Json;
  const finished = t.state === "COMPLETED" || t.state === "RESOLVING";
  const usage = (t.usage ?? {}) as Json;
  const fields = Object.entries(t).filter(([k]) => !["action", "env", "labels", "result", "usage"].includes(k));
  const cancel =
    res.can_cancel && !finished
      ? h(
          "button",
          {
            class: "danger",
            type: "button",
            id: "cancel",
            click: async () => {
              if (!confirm(`Cancel task ${guid}?`)) return;
              try {
                await api(`/api/tasks/${encodeURIComponent(guid)}/cancel`, { method: "POST" });
                changed();
              } catch (err) {
                alert((err as Error).message);
              }
            },
          },
          "Cancel task",
        )
      : null;
  const view = h(
    "div",
    {},
    h("h1", {}, "Task ", h("code", {}, guid)),
    h("p", {}, "State: ", h("span", { class: "state", id: "task-state" }, str(t.state)), " ", cancel),
    h(
      "section",
      { "aria-labelledby": "outcome-h" },
      h("h2", { id: "outcome-h" }, "Outcome"),
      h(
        "dl",
        { class: "facts", id: "outcome" },
        h("dt", {}, "Result"),
        h("dd", {}, outcome(t)),
        h("dt", {}, "Failure kind"),
        h("dd", {}, str(t.failure_kind) || "—"),
        h("dt", {}, "Exit status"),
        h("dd", {}, t.exit_status === undefined ? "—" : str(t.exit_status)),
        h("dt", {}, "Peak memory"),
        h("dd", {}, usage.peak_memory_bytes ? `${(num(usage.peak_memory_bytes) / 1048576).toFixed(1)} MiB` : "—"),
        h("dt", {}, "CPU time"),
        h("dd", {}, usage.cpu_time_ns ? `${(num(usage.cpu_time_ns) / 1e6).toFixed(0)} ms` : "—"),
      ),
      h("h3", {}, "result"),
      h("pre", { id: "result" }, str(t.result) || "(empty)"),
    ),
    h(
      "section",
      { "aria-labelledby": "timeline-h" },
      h("h2", { id: "timeline-h" }, "Timeline"),
      h(
        "ol",
        { class: "timeline" },
        ...((res.timeline ?? []) as Json[]).map((e) =>
          h(
            "li",
            {},
            h("span", { class: "state" }, str(e.state)),
            ` ${time(e.at)}`,
            e.detail ? ` — ${str(e.detail)}` : "",
          ),
        ),
      ),
    ),
    h(
      "section",
      { "aria-labelledby": "logs-h" },
      h("h2", { id: "logs-h" }, "Logs"),
      h("p", { id: "log-status", class: "muted" }),
      logLines,
    ),
    h(
      "section",
      { "aria-labelledby": "fields-h" },
      h("h2", { id: "fields-h" }, "Every field"),
      h(
        "dl",
        { class: "facts" },
        ...fields.flatMap(([k, v]) => [
          h("dt", {}, k),
          h("dd", {}, typeof v === "object" ? JSON.stringify(v) : str(v)),
        ]),
      ),
      h("h3", {}, "labels"),
      h("pre", {}, JSON.stringify(t.labels ?? {}, null, 2)),
      h("h3", {}, "env"),
      h("pre", {}, JSON.stringify(t.env ?? [], null, 2)),
      h("h3", {}, "action"),
      h("pre", {}, JSON.stringify(t.action ?? {}, null, 2)),
    ),
  );
  followLogs(guid);
  return view;
}

// ---- routing ------------------------------------------------------------------------------------

async function route(): Promise<void> {
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, q] = hash.split("?") as [string, string | undefined];
  const query = new URLSearchParams(q ?? "");
  const task = /^\/tasks\/(.+)$/.exec(path);
  const viewName = task ? "tasks" : path === "/cells" ? "cells" : path.startsWith("/tasks") ? "tasks" : "overview";
  for (const a of document.querySelectorAll("nav a")) {
    if ((a as HTMLElement).dataset.view === viewName) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (!task) {
    logStream?.close();
    logStream = undefined;
    logGuid = "";
  }
  const render = async () => {
    try {
      const view = task
        ? await taskView(decodeURIComponent(task[1]!))
        : path === "/cells"
          ? await cellsView()
          : path.startsWith("/tasks")
            ? await tasksView(query)
            : await overview();
      main.replaceChildren(view);
    } catch (err) {
      main.replaceChildren(h("h1", {}, "Could not load this view"), h("p", { role: "alert" }, (err as Error).message));
    }
  };
  refresh = () => void render();
  await render();
}

window.addEventListener("hashchange", () => {
  void route().then(() => main.focus());
});
connect();
void route();

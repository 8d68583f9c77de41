import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { TaskState } from "@diego/proto";
import { Cluster, eventually, fixtureTask, freePort, REPO_ROOT, uniqueGuid, waitForState } from "@diego/e2e";

// The console in a real browser (Debian's chromium, driven by puppeteer-core) against a whole
// cluster on real etcd and Docker: both cells, a task that appears at once and moves through its
// states live, its logs and result, and a cancel from the console. Screenshots of each view go to
// test-results/console/ (docs/console.md).
const shots = join(REPO_ROOT, "test-results", "console");
const chromium = process.env.DIEGO_CHROMIUM ?? "/usr/bin/chromium";
const suffix = `${process.pid}`;
const cellIds = [`console-a-${suffix}`, `console-b-${suffix}`];
let cluster: Cluster;
let browser: Browser;
let page: Page;
let url: string;

beforeAll(async () => {
  mkdirSync(shots, { recursive: true });
  const consoleAddress = `127.0.0.1:${await freePort()}`;
  url = `http://${consoleAddress}/`;
  cluster = await Cluster.start({
    cells: cellIds.map((id) => ({ id })),
    bbsArgs: ["--console-address", consoleAddress, "--console-allow-cancel"],
  });
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    userDataDir: mkdtempSync(join(tmpdir(), "diego-chromium-")),
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-dev-shm-usage",
    ],
  });
  page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await cluster?.stop();
}, 60_000);

const text = (selector: string) => page.$eval(selector, (el) => el.textContent ?? "");

test("the landing page shows both cells with their capacity, the tasks by state and the leaders", async () => {
  await page.goto(url);
  for (const id of cellIds) await page.waitForSelector(`[data-cell="${id}"]`, { timeout: 30_000 });
  const card = await text(`[data-cell="${cellIds[0]}"]`);
  expect(card).toMatch(/Memory\s*\d+ \/ \d+ MiB used/);
  expect(card).toMatch(/Containers\s*\d+ \/ \d+ used/);
  expect(await page.$$eval("meter", (m) => m.length)).toBeGreaterThanOrEqual(6);
  expect(await text("[data-count=PENDING]")).toMatch(/\d+PENDING/);
  await eventually(
    "the auctioneer to be shown as leader",
    async () => !/none/.test(await text('[data-leader="auctioneer"]')),
  );
  await page.screenshot({ path: join(shots, "overview.png"), fullPage: true });
}, 60_000);

test("a desired task appears at once and moves through its states live; its page shows logs, result and outcome", async () => {
  await page.goto(url);
  await page.waitForSelector(`[data-cell="${cellIds[0]}"]`);
  await page.evaluate("window.notReloaded = true");
  const guid = uniqueGuid("console");
  const desiredAt = Date.now();
  await cluster.tasks.desireTask(
    fixtureTask("hello.json", guid, {
      action: {
        run: { path: "/bin/sh", args: ["-c", "echo starting $GREETING; sleep 2; echo done; printf 42 > /tmp/result"] },
      },
    }),
  );
  const row = `[data-task="${guid}"]`;
  await page.waitForSelector(row, { timeout: 10_000 });
  const appearedMs = Date.now() - desiredAt;
  // What the row said over time, read from the page without reloading it.
  const seen = new Set<string>();
  await eventually(
    "the row to show COMPLETED",
    async () => {
      const state = await page.$eval(`${row} .state`, (el) => el.textContent ?? "").catch(() => "");
      if (state) seen.add(state);
      return state === "COMPLETED";
    },
    150_000,
    100,
  );
  expect(await page.evaluate("window.notReloaded")).toBe(true);
  expect(seen.has("RUNNING") || seen.has("CLAIMED") || seen.has("PENDING")).toBe(true);
  process.stdout.write(
    `console: the task appeared ${appearedMs} ms after DesireTask; states seen: ${[...seen].join(" → ")}\n`,
  );

  await page.click(`${row} a`);
  await page.waitForSelector("#task-state");
  await eventually("its logs", async () => (await text("#logs")).includes("starting hello"), 30_000);
  expect(await text("#logs")).toContain("done");
  expect(await text("#result")).toBe("42");
  expect(await text("#outcome")).toContain("succeeded");
  expect(await page.$$eval("ol.timeline li", (li) => li.map((l) => l.textContent ?? ""))).toEqual(
    expect.arrayContaining([expect.stringMatching(/^PENDING/), expect.stringMatching(/^COMPLETED/)]),
  );
  // No secret is ever on the page.
  expect(await page.content()).not.toContain("image_password");
  await page.screenshot({ path: join(shots, "task.png"), fullPage: true });

  await page.goto(`${url}#/tasks?state=COMPLETED`);
  await page.waitForSelector(row);
  await page.screenshot({ path: join(shots, "tasks.png"), fullPage: true });
  await page.goto(`${url}#/cells`);
  await page.waitForSelector(`[data-cell="${cellIds[1]}"]`);
  await page.screenshot({ path: join(shots, "cells.png"), fullPage: true });
}, 240_000);

test("a running task is cancelled from its page, and the page follows it to COMPLETED", async () => {
  const guid = uniqueGuid("console-cancel");
  await cluster.tasks.desireTask(
    fixtureTask("hello.json", guid, { action: { run: { path: "/bin/sh", args: ["-c", "echo waiting; sleep 120"] } } }),
  );
  await waitForState(cluster.tasks, guid, [TaskState.RUNNING]);
  await page.goto(`${url}#/tasks/${guid}`);
  await page.waitForSelector("#cancel");
  page.once("dialog", (dialog) => void dialog.accept());
  await page.click("#cancel");
  await eventually(
    "the page to show the cancel",
    async () => (await text("#outcome")).includes("task was cancelled"),
    30_000,
  );
  expect(await text("#task-state")).toBe("COMPLETED");
  const task = await cluster.tasks.getTask({ taskGuid: guid });
  expect(task).toMatchObject({ state: TaskState.COMPLETED, failed: true, failureReason: "task was cancelled" });
  await page.screenshot({ path: join(shots, "task-cancelled.png"), fullPage: true });
}, 90_000);

test("at a phone's width the landing page stacks its cards and stays usable by keyboard", async () => {
  await page.setViewport({ width: 390, height: 844, isMobile: true });
  await page.goto(url);
  await page.waitForSelector(`[data-cell="${cellIds[0]}"]`);
  const width = (await page.evaluate("document.documentElement.scrollWidth")) as number;
  expect(width).toBeLessThanOrEqual(400);
  // Tab reaches the skip link first, then the navigation.
  await page.keyboard.press("Tab");
  expect(await page.evaluate("document.activeElement?.textContent")).toBe("Skip to content");
  await page.screenshot({ path: join(shots, "overview-phone.png"), fullPage: true });
}, 60_000);

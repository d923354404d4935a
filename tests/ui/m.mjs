// The M browser: a Write user pages through a topic, searches it, adds an entry through the form,
// sees an entry written by another client arrive live (no reload), edits and removes entries; a
// Read user sees no write controls and a forced write with their session is refused.
//   node tests/ui/m.mjs '{"base", "topic", "writer": {email, password}, "reader": {email, password}, "signal": path}'
// When the writer's page is live on the last page it writes "ready" to `signal`; the test then adds
// an entry from another client (httpx with the admin key).
import { writeFileSync } from "node:fs";

import { loginAs, main, newPage, pageBasics, shot } from "./app.mjs";

const args = JSON.parse(process.argv[2]);
const range = (page) => page.locator(".m-range").first().textContent();
const waitRange = async (page, text) => {
  try {
    await page.waitForFunction((t) => document.querySelector(".m-range")?.textContent === t, text, { timeout: 15000 });
  } catch (e) {
    const now = await page.evaluate(() => document.querySelector(".m-range")?.textContent ?? document.querySelector("main")?.textContent);
    throw new Error(`waiting for "${text}", the page shows "${now}" (${page.url()})`);
  }
};
// the login lands on the dashboard: let it finish its requests (a navigation would abort them)
const dashboardDone = (page) => page.waitForFunction(() => window.coflowsApp?.rendered?.dashboard !== undefined, null, { timeout: 15000 });
const rowValues = (page) => page.$$eval("table.m-entries tbody tr:not(.m-editor) td.m-value", (tds) => tds.map((td) => td.textContent));

await main(async (browser, out) => {
  // --- the writer --------------------------------------------------------------------------------
  const { page, problems } = await loginAs(browser, args.base, args.writer.email, args.writer.password);
  await dashboardDone(page);
  await page.goto(args.base + "/ui/m");
  await page.waitForSelector("table.m-topics tbody tr");
  out.topics = await page.$$eval("table.m-topics tbody tr", (trs) => trs.map((tr) => Array.from(tr.cells).map((c) => c.textContent.trim())));
  out.topicsBasics = await pageBasics(page);
  await page.getByRole("link", { name: args.topic, exact: true }).click();
  await page.waitForSelector("table.m-entries tbody tr");
  await page.waitForSelector(".m-live.on");
  await page.evaluate(() => { window.__sameDocument = true; });
  out.basics = await pageBasics(page);
  out.first = { range: await range(page), rows: (await rowValues(page)).length, firstValue: (await rowValues(page))[0] };

  // 100 per page, then through the pages with the keyboard (focus Next, press Enter)
  await page.getByLabel("Per page").selectOption("100");
  await waitRange(page, "1–100 of 250");
  const next = page.getByRole("button", { name: "Next" });
  await next.focus();
  await page.keyboard.press("Enter");
  await waitRange(page, "101–200 of 250");
  out.page2 = { firstValue: (await rowValues(page))[0], rows: (await rowValues(page)).length };
  await page.keyboard.press("Enter");
  await waitRange(page, "201–250 of 250");
  out.page3 = { rows: (await rowValues(page)).length, nextDisabled: await next.isDisabled() };
  await page.getByRole("button", { name: "Previous" }).click();
  await waitRange(page, "101–200 of 250");
  out.url = new URL(page.url()).search;

  // search (debounced, from page 2 back to the first page of matches)
  await page.getByLabel("Search entries").focus();
  await page.keyboard.type("item 7");
  await waitRange(page, "1–11 of 11");
  out.search = await rowValues(page);
  await page.getByLabel("Search entries").fill("no such thing");
  await page.waitForSelector("text=No entry matches");
  await page.getByLabel("Search entries").fill("");
  await waitRange(page, "1–100 of 250");

  // add through the form, on the last page (entries are in insertion order)
  await next.click();
  await waitRange(page, "101–200 of 250");
  await next.click();
  await waitRange(page, "201–250 of 250");
  await page.getByText("Add an entry").click();
  await page.getByLabel("Value (JSON)").fill('{"added": "by the form",');
  await page.getByRole("button", { name: "Add", exact: true }).click();
  out.invalid = await page.locator(".m-add [role=alert]").textContent();
  await page.getByLabel("Value (JSON)").fill('{"added": "by the form"}');
  await page.getByRole("button", { name: "Add", exact: true }).click();
  await page.waitForSelector('table.m-entries td.m-value:has-text("by the form")');
  await waitRange(page, "201–251 of 251");
  out.added = await range(page);

  // another client writes: the row shows up, flashed and announced, without a reload
  writeFileSync(args.signal, "ready");
  await page.waitForSelector('table.m-entries td.m-value:has-text("another client")', { timeout: 30000 });
  out.liveRow = await page.locator('tr.flash td.m-value:has-text("another client")').count();
  await waitRange(page, "201–252 of 252");
  out.live = {
    range: await range(page),
    sameDocument: await page.evaluate(() => window.__sameDocument === true),
  };
  await page.waitForFunction(() => /new entr/.test(document.getElementById("m-announce")?.textContent || ""));
  out.announce = await page.locator("#m-announce").textContent();
  await shot(page, "ui-m");

  // edit the other client's entry
  const otherId = await page.locator('tr:has(td.m-value:has-text("another client"))').getAttribute("data-id");
  await page.getByRole("button", { name: `Edit entry ${otherId}` }).click();
  const editor = page.getByLabel(/New value of entry/);
  await editor.fill('{"from": "another client", "edited": true}');
  await page.getByRole("button", { name: "Save" }).click();
  await page.waitForSelector('table.m-entries td.m-value:has-text("\\"edited\\":true")');
  out.edited = await page.$eval(`tr[data-id="${otherId}"]`, (tr) => Array.from(tr.cells).slice(1, 3).map((c) => c.textContent));

  // remove the form's entry, confirming
  const formId = await page.locator('tr:has(td.m-value:has-text("by the form"))').getAttribute("data-id");
  await page.getByRole("button", { name: `Remove entry ${formId}` }).click();
  out.confirmFocused = await page.evaluate(() => document.activeElement?.textContent);
  await page.getByRole("button", { name: "Yes, remove" }).click();
  await page.waitForSelector(`tr[data-id="${formId}"]`, { state: "detached" });
  await waitRange(page, "201–251 of 251");
  out.afterRemove = await range(page);

  // 390 px: no sideways scroll, the menu opens
  await page.setViewportSize({ width: 390, height: 800 });
  out.narrow = await pageBasics(page);
  await page.getByRole("button", { name: "Menu" }).click();
  out.narrowMenu = await page.getByRole("link", { name: "M", exact: true }).isVisible();
  await shot(page, "ui-m-390");
  out.problems = problems;
  await page.close();

  // --- the reader ----------------------------------------------------------------------------------
  const r = await loginAs(browser, args.base, args.reader.email, args.reader.password);
  await dashboardDone(r.page);
  await r.page.goto(args.base + "/ui/m/" + encodeURIComponent(args.topic));
  await r.page.waitForSelector("table.m-entries tbody tr");
  await r.page.waitForSelector(".m-live.on");
  out.reader = await r.page.evaluate(() => ({
    buttons: Array.from(document.querySelectorAll("main button")).map((b) => b.textContent.trim()),
    textareas: document.querySelectorAll("main textarea").length,
    add: document.body.textContent.includes("Add an entry"),
    headers: Array.from(document.querySelectorAll("table.m-entries th")).map((th) => th.textContent),
    level: document.querySelector("main p")?.textContent,
  }));
  out.readerProblems = [...r.problems];
  // with an API key in the URL instead of a session: the websocket carries the key too
  const k = await newPage(browser);
  await k.page.goto(`${args.base}/ui/m/${encodeURIComponent(args.topic)}?_cokey=${encodeURIComponent(args.readerKey)}`);
  await k.page.waitForSelector("table.m-entries tbody tr");
  await k.page.waitForSelector(".m-live.on");
  out.keyed = { range: await range(k.page), buttons: await k.page.$$eval("main button", (bs) => bs.map((b) => b.textContent.trim())),
    problems: k.problems };
  await k.page.close();
  out.forced = await r.page.evaluate(async (topic) => {
    const me = await (await fetch("/auth/me")).json();
    const res = await fetch("/m/add?type=" + encodeURIComponent(topic), {
      method: "POST", headers: { "content-type": "application/json", "x-csrf-token": me.csrf },
      body: JSON.stringify({ forced: true }),
    });
    return { status: res.status, body: await res.json() };
  }, args.topic);
});

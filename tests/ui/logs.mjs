// The live log page: a Read user picks the workflow, sees the buffered line, then a query function's
// print arrives live tagged with the function; the text filter, pause (lines held) and resume;
// at 1280 and 390 px.
//   node tests/ui/logs.mjs '{"base": ..., "email": ..., "password": ..., "key": ..., "wid": ..., "name": ...}'
import { loginAs, main, pageBasics, shot } from "./app.mjs";

const args = JSON.parse(process.argv[2]);

/** Call Say.py/Say(text) as the user (their API key), outside the page. */
async function say(text) {
  const r = await fetch(`${args.base}/flow/query/${args.wid}/Say.py/Say?text=${encodeURIComponent(text)}`,
    { headers: { "x-api-key": args.key } });
  if (!r.ok) throw new Error(`Say: ${r.status} ${await r.text()}`);
}

const lines = (page) => page.evaluate(() => Array.from(document.querySelectorAll("ol.log li")).map((li) => ({
  fn: li.querySelector(".fn")?.textContent, text: li.querySelector(".text")?.textContent ?? li.textContent.trim(),
})));

await main(async (browser, out) => {
  const { page, problems } = await loginAs(browser, args.base, args.email, args.password);
  // open the page from the menu, choose the workflow in the select
  await page.getByRole("link", { name: "Logs" }).click();
  await page.waitForSelector("#log-workflow");
  await page.selectOption("#log-workflow", args.wid);
  await page.waitForSelector(".stream-state.live");
  await page.waitForFunction((t) => document.querySelector("ol.log")?.textContent.includes(t), `said ${args.before}`);
  out.url = new URL(page.url()).pathname + new URL(page.url()).search;
  out.options = await page.locator("#log-workflow option").allTextContents();
  // live: a call's print arrives, tagged with its function
  const live = `live-${Date.now()}`;
  await say(live);
  await page.waitForFunction((t) => document.querySelector("ol.log")?.textContent.includes(t), `said ${live}`, { timeout: 20000 });
  out.lines = await lines(page);
  out.region = await page.evaluate(() => {
    const log = document.querySelector("ol.log");
    return { role: log.getAttribute("role"), live: log.getAttribute("aria-live"), label: log.getAttribute("aria-label") };
  });
  // filter by text
  await page.getByLabel("Filter").fill(live);
  out.filtered = await lines(page);
  await page.getByLabel("Filter").fill("");
  // pause: a new line is held, not shown; resume shows it
  await page.getByRole("button", { name: "Pause" }).click();
  const held = `held-${Date.now()}`;
  await say(held);
  await page.waitForFunction(() => /held/.test(document.querySelector(".stream-state")?.textContent || ""), null, { timeout: 20000 });
  out.whilePaused = { shown: (await lines(page)).some((l) => l.text.includes(held)),
    state: await page.locator(".stream-state").textContent(),
    pressed: await page.getByRole("button", { name: "Resume" }).getAttribute("aria-pressed") };
  await page.getByRole("button", { name: "Resume" }).click();
  await page.waitForFunction((t) => document.querySelector("ol.log")?.textContent.includes(t), `said ${held}`);
  out.resumed = true;
  out.basics = await pageBasics(page);
  await shot(page, "ui-logs");
  await page.setViewportSize({ width: 390, height: 800 });
  out.narrow = await pageBasics(page);
  await shot(page, "ui-logs-390");
  // the stream's own request is cut when the page closes: not a problem of the page
  out.problems = problems.filter((p) => !(p.startsWith("requestfailed") && p.includes("/flow/logs/")));
});

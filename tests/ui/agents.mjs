// The agents page: a Write user sees the agent's state and next fire times, runs it now (from the
// keyboard) and sees the new run and its output, stops and starts it; at 1280 and 390 px. A Read
// user sees no Start / Stop / Run now, and the forced request (session + CSRF token) is refused.
//   node tests/ui/agents.mjs '{"base": ..., "writer": ..., "reader": ..., "password": ..., "agent": "tick"}'
import { loginAs, main, pageBasics, shot } from "./app.mjs";

const args = JSON.parse(process.argv[2]);
const CARD = `.agent-card[data-agent="${args.agent}"]`;

async function card(page) {
  return page.evaluate((sel) => {
    const c = document.querySelector(sel);
    const text = (q) => c.querySelector(q)?.textContent.trim();
    return {
      name: text("h2"),
      state: text(".pill.state"),
      nextRuns: Array.from(c.querySelectorAll("ol.next-runs time")).map((t) => ({ iso: t.getAttribute("datetime"), shown: t.textContent })),
      schedule: text("dd.schedule code"),
      topic: c.querySelector("a[href^='/ui/m/']")?.getAttribute("href"),
      hooks: Array.from(c.querySelectorAll("dd .pill")).map((p) => p.textContent),
      buttons: Array.from(c.querySelectorAll("button")).map((b) => b.textContent.trim()),
      runs: Array.from(c.querySelectorAll("table.runs tbody tr")).map((tr) => Array.from(tr.cells).map((td) => td.textContent.trim())),
      zone: Intl.DateTimeFormat().resolvedOptions().timeZone,
    };
  }, CARD);
}

await main(async (browser, out) => {
  // --- a Write user ---
  const { page, problems } = await loginAs(browser, args.base, args.writer, args.password);
  await page.getByRole("link", { name: "Agents" }).click();  // from the menu (a goto would cut the dashboard's requests)
  await page.waitForSelector(`${CARD} ol.next-runs time`);
  await page.waitForSelector(`${CARD} table.runs, ${CARD} .hint`);
  out.before = await card(page);
  // the keyboard: Tab to "Run now" and press Enter
  let tabs = 0;
  while (tabs < 60 && !(await page.evaluate(() => document.activeElement?.textContent?.trim() === "Run now"))) {
    await page.keyboard.press("Tab");
    tabs += 1;
  }
  out.tabbedToRunNow = tabs < 60;
  await page.keyboard.press("Enter");
  const n = out.before.runs.length;
  await page.waitForFunction(([sel, n]) => {
    const rows = document.querySelectorAll(`${sel} table.runs tbody tr`);
    return rows.length > n && rows[0].classList.contains("ok");
  }, [CARD, n], { timeout: 30000 });
  // the output, expanded
  await page.locator(`${CARD} table.runs tbody tr`).first().locator("summary").click();
  out.output = await page.locator(`${CARD} table.runs tbody tr`).first().locator("pre").first().innerText();
  out.afterRun = await card(page);
  out.basics = await pageBasics(page);
  await shot(page, "ui-agents");

  // stop, then start
  await page.getByRole("button", { name: `Stop ${out.before.name}` }).click();
  await page.waitForFunction((sel) => document.querySelector(`${sel} .pill.state`)?.textContent === "stopped", CARD);
  out.stopped = await card(page);
  await page.getByRole("button", { name: `Start ${out.before.name}` }).click();
  await page.waitForFunction((sel) => document.querySelector(`${sel} .pill.state`)?.textContent === "running", CARD);
  await page.waitForSelector(`${CARD} ol.next-runs time`);
  out.started = await card(page);

  // narrow
  await page.setViewportSize({ width: 390, height: 800 });
  out.narrow = await pageBasics(page);
  await page.getByRole("button", { name: "Menu" }).click();
  out.narrowMenu = await page.locator("#main-nav").isVisible();
  await page.getByRole("button", { name: "Menu" }).click();
  await shot(page, "ui-agents-390");
  out.problems = problems;
  await page.close();

  // --- a Read user ---
  const { page: reader, problems: readerProblems } = await loginAs(browser, args.base, args.reader, args.password);
  await reader.getByRole("link", { name: "Agents" }).click();
  await reader.waitForSelector("#agent-workflow option[value]:not([value=''])", { state: "attached" });
  await reader.selectOption("#agent-workflow", args.workflow);
  await reader.waitForSelector(`${CARD} table.runs`);
  out.readerUrl = new URL(reader.url()).pathname + new URL(reader.url()).search;
  out.reader = await card(reader);
  out.readerProblems = [...readerProblems];
  out.forced = await reader.evaluate(async (agent) => {
    const me = await (await fetch("/auth/me")).json();
    const r = await fetch(`/flow/agent/${encodeURIComponent(agent)}/run`, { method: "POST", headers: { "x-csrf-token": me.csrf } });
    return { status: r.status, body: await r.json() };
  }, args.agent);
});

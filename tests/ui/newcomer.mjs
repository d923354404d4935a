// The whole path of a newcomer on the example workspace, in one browser session: log in, open the
// example workflow, call Add from the form and see 3, add an M entry and see another client's entry
// arrive live, watch the agent that watches the topic run, submit a flow and see it finish.
//   node tests/ui/newcomer.mjs '{"base", "email", "password", "key", "wid"}'
import { loginAs, main, pageBasics, shot } from "./app.mjs";
import { waitReady } from "./browser.mjs";

const args = JSON.parse(process.argv[2]);
const agent = `${args.wid}-PythonAgent`;

await main(async (browser, out) => {
  const { page, problems } = await loginAs(browser, args.base, args.email, args.password);
  out.titles = [];
  const note = async () => out.titles.push((await pageBasics(page)).title);

  // 1. the dashboard → the example workflow → its Python query
  await page.getByRole("link", { name: "Example", exact: true }).click();
  await page.waitForSelector("h1:has-text('Example')");
  await note();
  await page.getByRole("link", { name: "PythonQuery.py" }).first().click();
  await page.waitForSelector("article#fn-Add");
  await note();
  const add = page.locator("article#fn-Add");
  await add.getByLabel("x", { exact: true }).fill("1");
  await add.getByLabel("y", { exact: true }).fill("2");
  await add.getByLabel("y", { exact: true }).press("Enter");
  await add.locator(".outcome .result").waitFor({ timeout: 30000 });
  out.add = (await add.locator(".outcome pre").textContent()).trim();
  await shot(page, "ui-newcomer-query");

  // 2. the M browser: the agent's topic; an entry from the form, then one from another client, live
  await page.goto(args.base + "/ui/m/orders");
  await page.waitForSelector(".m-live.on", { timeout: 15000 });
  await note();
  await page.getByText("Add an entry").click();
  await page.getByLabel("Value (JSON)").fill('{"item": "apples", "qty": 3}');
  await page.getByRole("button", { name: "Add", exact: true }).click();
  await page.waitForSelector('table.m-entries td.m-value:has-text("apples")', { timeout: 15000 });
  const sent = await fetch(args.base + "/m/add?type=orders", {
    method: "POST", headers: { "x-api-key": args.key, "content-type": "application/json" },
    body: JSON.stringify({ item: "pears", qty: 5 }) });
  out.otherClient = sent.status;
  await page.waitForSelector('table.m-entries td.m-value:has-text("pears")', { timeout: 30000 });
  out.liveRows = await page.locator("table.m-entries tbody tr").count();
  await shot(page, "ui-newcomer-m");

  // 3. the agent that watches "orders" ran its Add hook for both entries
  await page.getByRole("link", { name: "Agents" }).click();
  const card = `.agent-card[data-agent="${agent}"]`;
  await page.waitForSelector(`${card} table.runs, ${card} .hint`, { timeout: 15000 });
  for (let i = 0; i < 30; i++) {
    const hooks = await page.locator(`${card} table.runs tbody tr td:first-child`).allTextContents();
    if (hooks.filter((h) => h.trim() === "Add").length >= 2) break;
    await page.waitForTimeout(1000);
    if (i % 5 === 4) { await page.reload(); await page.waitForSelector(`${card} table.runs, ${card} .hint`); }
  }
  out.agentHooks = (await page.locator(`${card} table.runs tbody tr td:first-child`).allTextContents()).map((h) => h.trim());
  await note();
  await shot(page, "ui-newcomer-agents");

  // 4. a flow of the workflow, submitted from the runs page, finishes on its page
  await page.getByRole("link", { name: "Flow runs" }).click();
  await page.waitForSelector("details.submit > summary");
  await page.click("details.submit > summary");
  await page.waitForSelector("#flow-workflow");
  await page.selectOption("#flow-workflow", args.wid);
  await page.waitForFunction(() => [...document.querySelectorAll("#flow-name option")].some((o) => o.value === "prices-report"));
  await page.selectOption("#flow-name", "prices-report");
  await page.getByRole("button", { name: "Submit flow" }).click();
  await page.waitForURL(/\/ui\/flows\/runs\/[^/?]+/, { timeout: 15000 });
  await waitReady(page);
  await page.waitForFunction(() => window.coflowsDag.run().state === "finished" && !window.coflowsDag.live, null,
    { timeout: 60000 });
  out.flow = await page.evaluate(() => ({ state: window.coflowsDag.run().state, nodes: window.coflowsDag.nodes() }));
  await note();
  await shot(page, "ui-newcomer-flow");
  out.problems = problems;
});

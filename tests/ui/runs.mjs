// The flow runs page of the web app: a logged-in user reaches it from the menu, submits a declared
// flow from the form (keyboard), sees it finish on its page, submits a spec, sees a bad spec
// refused, checks 1280 and 390 px; then a guest sees the login hint on the list and on a run's page.
//   node tests/ui/runs.mjs '{"base", "email", "password", "workflow": id, "flow": name, "inputs": {...}}'
import { loginAs, main, newPage, pageBasics, shot } from "./app.mjs";
import { asGuest, waitReady, withoutGuestNoise } from "./browser.mjs";

const args = JSON.parse(process.argv[2]);

/** Fill the open submit form and send it; returns the run page's result once the run is over. */
async function submitted(page) {
  await page.waitForURL(/\/ui\/flows\/runs\/[^/?]+/, { timeout: 15000 });
  await waitReady(page);
  await page.waitForFunction(() => window.coflowsDag.run().state === "finished" && !window.coflowsDag.live,
    null, { timeout: 30000 });
  return page.evaluate(() => ({
    id: window.coflowsDag.run().id, nodes: window.coflowsDag.nodes(),
    states: Object.fromEntries(window.coflowsDag.nodes().map((n) => [n, window.coflowsDag.state(n)])),
    runState: document.querySelector("#run-state")?.dataset.state, h1: document.querySelector("h1")?.textContent,
  }));
}

async function openForm(page) {
  await page.goto(args.base + "/ui/flows");
  await page.waitForSelector("details.submit > summary");
  await page.focus("details.submit > summary");
  await page.keyboard.press("Enter");  // the keyboard opens the form
  await page.waitForSelector("#flow-workflow");
}

await main(async (browser, out) => {
  const { page, problems } = await loginAs(browser, args.base, args.email, args.password);
  // reachable from the menu
  await page.getByRole("link", { name: "Flow runs" }).click();
  await page.waitForSelector("#runs-title");
  out.empty = await page.textContent("#empty", { timeout: 10000 });
  out.agentRuns = await page.getAttribute("#agent-runs", "href");

  // a declared flow, from the form, with inputs
  await page.focus("details.submit > summary");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#flow-name");
  await page.selectOption("#flow-workflow", args.workflow);
  await page.waitForFunction((f) => [...document.querySelectorAll("#flow-name option")].some((o) => o.value === f), args.flow);
  await page.selectOption("#flow-name", args.flow);
  await page.fill("#flow-inputs", JSON.stringify(args.inputs));
  await page.getByRole("button", { name: "Submit flow" }).click();
  out.declared = await submitted(page);
  // the details panel of the last task: its output, as stored
  await page.click(`tr[data-node="total"] button`);
  await page.waitForSelector('#details[data-node="total"] dd[data-field="output"]', { timeout: 10000 });
  out.declared.output = await page.textContent('#details dd[data-field="output"]');
  out.declared.basics = await pageBasics(page);
  await shot(page, "ui-flow-submitted");

  // a spec written in the form
  await openForm(page);
  await page.getByLabel("A spec").check();
  await page.fill("#flow-spec", "Data.py/start; Data.py/check");
  await page.fill("#flow-run-name", "from the form");
  await page.getByRole("button", { name: "Submit flow" }).click();
  out.spec = await submitted(page);

  // a spec naming no function of the workflow: the form says why, and stays
  await openForm(page);
  await page.getByLabel("A spec").check();
  await page.fill("#flow-spec", "Nope.py/nothing");
  await page.getByRole("button", { name: "Submit flow" }).click();
  out.refused = await page.getByRole("alert").textContent({ timeout: 10000 });
  out.refusedUrl = new URL(page.url()).pathname;
  problems.splice(0, problems.length, ...problems.filter((p) => !p.includes("/runs") && !p.includes("status of 4")));

  // the list, live: both runs, finished, with the tasks bar
  await page.goto(args.base + "/ui/flows?workflow=" + encodeURIComponent(args.workflow));
  await page.waitForSelector(`tr[data-run="${out.spec.id}"]`);
  await page.waitForFunction(() => document.querySelector("#live")?.dataset.live === "live");
  out.list = await page.evaluate(() => [...document.querySelectorAll("#runs tbody tr")].map((tr) => ({
    id: tr.dataset.run, state: tr.dataset.state, name: tr.cells[1].textContent, tasks: tr.cells[3].textContent,
    href: tr.querySelector("a").getAttribute("href") })));
  out.basics = await pageBasics(page);
  await page.evaluate(() => { document.querySelector("details.submit").open = true; });  // the form, in the picture
  await page.waitForSelector("#flow-workflow");
  await shot(page, "ui-flows");
  // 390 px: no sideways scroll, the menu behind its button
  await page.setViewportSize({ width: 390, height: 800 });
  out.narrow = await pageBasics(page);
  await page.getByRole("button", { name: "Menu" }).click();
  out.narrowMenu = await page.locator("#main-nav").isVisible();
  await shot(page, "ui-flows-390");
  await page.goto(args.base + "/ui/flows/runs/" + out.declared.id);
  await waitReady(page);
  out.narrowRun = await pageBasics(page);
  out.problems = problems;
  await page.close();

  // a guest: the private workflow's runs are not shown, and the page says to log in
  const { page: guest, problems: guestProblems } = await newPage(browser);
  await asGuest(guest);
  await guest.goto(args.base + "/ui/flows");
  await guest.waitForSelector("#login-hint", { timeout: 10000 });
  out.guestList = await guest.evaluate(() => ({
    hint: document.querySelector("#login-hint").textContent, rows: document.querySelectorAll("#runs tbody tr").length,
    empty: document.querySelector("#empty") !== null, text: document.querySelector("main").textContent }));
  await guest.goto(args.base + "/ui/flows/runs/" + out.declared.id);
  await guest.waitForSelector("#not-found", { timeout: 10000 });
  out.guestRun = { text: await guest.textContent("#not-found"), hint: await guest.textContent("#login-hint"),
    title: await guest.title() };
  // the run's page and the API both answer 404 to the guest: expected here, and nothing else
  out.guestProblems = withoutGuestNoise(guestProblems).filter((p) => !p.includes(out.declared.id) && !p.includes("status of 404"));
});

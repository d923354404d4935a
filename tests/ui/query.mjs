// The query page: the form of Add called with the keyboard (3), records as a table, a series as a
// chart (a canvas), text, an error's message, the curl line, permissions; the broken query's page
// marks its error line; a View-only user gets no form and the API refuses the forced call.
//   node tests/ui/query.mjs '{"base": ..., "email": ..., "password": ..., "wid": ..., "viewer": ...}'
import { loginAs, main, pageBasics, shot } from "./app.mjs";

const fnCard = (page, name) => page.locator(`article#fn-${name}`);

async function call(page, name) {
  const card = fnCard(page, name);
  await card.getByRole("button", { name: `Call ${name}` }).click();
  await card.locator(".outcome .result, .outcome .call-error").first().waitFor({ timeout: 30000 });
  return card;
}

await main(async (browser, out) => {
  const a = JSON.parse(process.argv[2]);
  const url = `${a.base}/ui/workflows/${encodeURIComponent(a.wid)}/queries/`;
  const { page, problems } = await loginAs(browser, a.base, a.email, a.password);
  await page.goto(url + "Calc.py");
  await page.waitForSelector("article#fn-Add");
  const q = {};
  // Add: fill the form, submit with Enter
  const add = fnCard(page, "Add");
  await add.getByLabel("x", { exact: true }).fill("1");
  await add.getByLabel("y", { exact: true }).fill("2");
  await add.getByLabel("y", { exact: true }).press("Enter");
  await add.locator(".outcome .result").waitFor({ timeout: 30000 });
  q.add = (await add.locator(".outcome pre").textContent()).trim();
  q.curl = await add.locator(".curl-line").textContent();
  // Records: a table (and a chart of its numeric column on demand)
  const rec = await call(page, "Records");
  q.recordsHeaders = await rec.locator("table.result-table th").allTextContents();
  q.recordsRows = await rec.locator("table.result-table tbody tr").count();
  await rec.getByRole("button", { name: "Chart" }).click();
  q.recordsChart = await rec.locator("figure.chart canvas").first().waitFor({ timeout: 10000 }).then(() => true, () => false);
  // Series: a chart
  const ser = await call(page, "Series");
  await ser.locator("figure.chart canvas").first().waitFor({ timeout: 10000 });
  q.seriesCanvas = await ser.locator("figure.chart canvas").count() > 0;
  // Hello: text
  const hello = fnCard(page, "Hello");
  await hello.getByLabel("name", { exact: true }).fill("Ada");
  await call(page, "Hello");
  q.hello = (await hello.locator("pre.result-string").textContent()).trim();
  // Fail: the error's message
  const fail = await call(page, "Fail");
  q.failError = await fail.locator(".call-error").textContent();
  q.secretPermissions = await fnCard(page, "Secret").locator(".fn-permissions").textContent().catch(() => "");
  q.secretForms = await fnCard(page, "Secret").locator("form").count();
  q.sourceLines = await page.locator(".source .line").count();
  q.basics = await pageBasics(page);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, "ui-query");
  await page.setViewportSize({ width: 390, height: 800 });
  out.narrow = await pageBasics(page);
  await shot(page, "ui-query-390");
  await page.setViewportSize({ width: 1280, height: 860 });
  out.query = q;
  // a failing function answers 500: the page shows it; that response is expected, the rest must be clean
  out.problems = problems.filter((p) => !(p.includes("/Fail") || p.includes("500 (Internal Server Error)")));

  // the broken query: its error line is marked in the source
  await page.goto(url + "Broken.py");
  await page.waitForSelector(".source .line");
  out.broken = await page.evaluate(() => ({
    markedLines: Array.from(document.querySelectorAll(".source .line.error-line")).map((l) => Number(l.dataset.line)),
    errorText: document.querySelector(".query-errors")?.textContent.replace(/\s+/g, " ").trim() ?? "",
  }));
  await shot(page, "ui-query-broken");

  // a View-only user: no form; the API refuses the call when it is forced
  const v = await loginAs(browser, a.base, a.viewer, a.password);
  await v.page.goto(url + "Calc.py");
  await v.page.waitForSelector("#read-needed");
  out.viewer = await v.page.evaluate(async (wid) => {
    const me = await (await fetch("/auth/me")).json();
    const r = await fetch(`/flow/query/${encodeURIComponent(wid)}/Calc.py/Add`, {
      method: "POST", headers: { "content-type": "application/json", "x-csrf-token": me.csrf },
      body: JSON.stringify({ x: 1, y: 2 }) });
    return { forms: document.querySelectorAll("form.call-form").length, message: document.getElementById("read-needed").textContent,
             source: document.querySelectorAll(".source").length, forced: r.status };
  }, a.wid);
  out.viewerProblems = v.problems.filter((p) => !p.includes("/Calc.py/Add") && !p.includes("403 (Forbidden)"));
});

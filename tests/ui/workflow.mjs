// The workflow page: README rendered (and sanitized), queries listed, a broken file's error with
// file:line, packages and files, no permissions for a Read user; 1280 px and 390 px; keyboard to a query.
//   node tests/ui/workflow.mjs '{"base": ..., "email": ..., "password": ..., "wid": ...}'
import { loginAs, main, pageBasics, shot } from "./app.mjs";

await main(async (browser, out) => {
  const a = JSON.parse(process.argv[2]);
  const { page, problems } = await loginAs(browser, a.base, a.email, a.password);
  // from the dashboard, as a person would: the workflow's card links to its page
  await page.locator(".workflow-card h2 a").first().click();
  await page.waitForSelector(".readme h3", { timeout: 15000 });
  out.workflow = await page.evaluate(() => ({
    url: location.pathname,
    readmeHeading: document.querySelector(".readme h3")?.textContent.trim(),
    scriptInReadme: !!document.querySelector(".readme script") || window.pwned === 1,
    queries: Array.from(document.querySelectorAll("table.queries td a")).map((x) => x.textContent.trim()),
    errors: Array.from(document.querySelectorAll("#wf-errors ~ ul.errors li, ul.errors li")).map((li) => li.textContent.replace(/\s+/g, " ").trim()),
    packages: document.querySelector(".packages")?.textContent ?? "",
    files: document.querySelector("table.files")?.textContent ?? "",
    permissionsShown: !!document.getElementById("wf-permissions"),
    agentsLink: document.querySelector("a[href^='/ui/agents?workflow=']")?.getAttribute("href"),
    flowsLink: document.querySelector("a[href^='/ui/flows?workflow=']")?.getAttribute("href"),
  }));
  out.workflow.basics = await pageBasics(page);
  await shot(page, "ui-workflow");
  // the keyboard: Tab reaches the query link, Enter opens the query page
  const link = page.locator("table.queries a", { hasText: "Calc.py" });
  await link.focus();
  await page.keyboard.press("Enter");
  await page.waitForSelector("article.fn", { timeout: 15000 });
  out.keyboardTo = await page.evaluate(() => location.pathname);
  await page.goBack();
  await page.waitForSelector(".readme h3");
  await page.setViewportSize({ width: 390, height: 800 });
  out.workflowNarrow = await pageBasics(page);
  await shot(page, "ui-workflow-390");
  out.problems = problems;
});

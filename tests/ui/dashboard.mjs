// The login page and the dashboard: log in through the form, see the workflows with their queries,
// agents and runs and the server's health, at 1280 px and 390 px; keyboard login; a wrong password.
//   node tests/ui/dashboard.mjs '{"base": ..., "email": ..., "password": ..., "workflow": "Name"}'
import { loginAs, main, newPage, pageBasics, shot, waitFor } from "./app.mjs";

await main(async (browser, out) => {
  // not logged in: / leads to the login page
  const { page: anon, problems: anonProblems } = await newPage(browser);
  await anon.goto(args().base + "/");
  await waitFor(anon, "form input#email", anonProblems);
  out.anonymous = { url: new URL(anon.url()).pathname, title: await anon.title(), basics: await pageBasics(anon) };
  // a wrong password says so, on the page
  await anon.getByLabel("Email").fill(args().email);
  await anon.getByLabel("Password").fill("wrong password!");
  await anon.getByLabel("Password").press("Enter");  // the keyboard submits the form
  out.wrong = await anon.getByRole("alert").textContent({ timeout: 10000 });
  await shot(anon, "ui-login");
  await anon.close();

  const { page, problems } = await loginAs(browser, args().base, args().email, args().password);
  await page.waitForSelector("#workflows .workflow-card");
  await page.waitForSelector(".health");
  out.dashboard = await page.evaluate(() => ({
    cards: Array.from(document.querySelectorAll(".workflow-card h2")).map((h) => h.textContent.trim()),
    queries: Array.from(document.querySelectorAll(".workflow-card dd a[href*='/queries/']")).map((a) => a.textContent.trim()),
    health: document.querySelector(".health")?.textContent.replace(/\s+/g, " ").trim(),
    user: document.querySelector("header .who a")?.textContent.trim(),
  }));
  out.basics = await pageBasics(page);
  await shot(page, "ui-dashboard");
  // narrow: the menu folds behind a button that opens it
  await page.setViewportSize({ width: 390, height: 800 });
  out.narrow = await pageBasics(page);
  await page.getByRole("button", { name: "Menu" }).click();
  out.narrowMenu = await page.locator("#main-nav").isVisible();
  await shot(page, "ui-dashboard-390");
  out.problems = problems;
});

function args() { return JSON.parse(process.argv[2]); }

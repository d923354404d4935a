// A Dash app behind /dash in a real browser: a guest is sent to the login page, logs in, comes back
// to the app, whose scripts load and whose callbacks (POST _dash-update-component with the session
// cookie and X-CSRFToken) run; changing the input runs the callback again.
//   node tests/ui/dash.mjs '{"base", "app", "email", "password"}'
import { main, newPage, shot, waitFor } from "./app.mjs";

const A = JSON.parse(process.argv[2]);

await main(async (browser, out) => {
  const { page, problems } = await newPage(browser, { width: 1280, height: 860 });
  const updates = [];
  page.on("response", (r) => {
    if (r.request().method() === "POST" && new URL(r.url()).pathname.endsWith("/_dash-update-component")) {
      updates.push({ url: new URL(r.url()).pathname, status: r.status(),
                     csrf: Boolean(r.request().headers()["x-csrftoken"]) });
    }
  });
  await page.goto(A.base + A.app);
  out.loginUrl = new URL(page.url()).pathname + new URL(page.url()).search;
  await page.getByLabel("Email").fill(A.email);
  await page.getByLabel("Password").fill(A.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL((u) => u.pathname === A.app, { timeout: 30000 });
  problems.length = 0;  // before the login the web app asked /auth/me as a guest (401): expected
  try {
    await page.waitForFunction(() => (document.querySelector("#who")?.textContent || "").includes("@"), null,
                               { timeout: 60000 });
    out.who = await page.locator("#who").innerText();
    await waitFor(page, "#chart .main-svg", problems);
    const before = updates.length;
    await page.locator("#points").fill("4");
    await page.waitForFunction(() => document.querySelectorAll("#chart .scatterlayer .trace").length > 0, null,
                               { timeout: 30000 });
    for (let i = 0; i < 300 && updates.length <= before; i++) await page.waitForTimeout(100);
    out.moreUpdates = updates.length > before;
  } catch (e) {
    await shot(page, "ui-dash-failed");
    out.failedProblems = problems;
    throw e;
  }
  out.updates = updates;
  out.title = await page.title();
  await shot(page, "ui-dash");
  out.problems = problems.filter((p) => !/favicon/.test(p));
});

// The admin page: an admin adds a user (keyboard) and a group, grants the user Read on a workflow with an
// expiry, mints them a key (shown once, copied), removes a user (confirmed); at 1280 and 390 px. A normal
// user sees "admins only" and the forced POST /auth/users from their session is refused.
//   node tests/ui/admin.mjs '{"base", "admin", "normal", "password", "workflow", "newPassword"}'
import { loginAs, main, pageBasics, shot } from "./app.mjs";

const A = JSON.parse(process.argv[2]);
const NEW = "newbie@example.com";

function inDays(n) {
  const d = new Date(Date.now() + n * 86400000);
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

await main(async (browser, out) => {
  const { page, problems } = await loginAs(browser, A.base, A.admin, A.password);
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: A.base });
  // the nav shows Admin to admins; it leads to the page
  await page.getByRole("link", { name: "Admin" }).click();
  await page.waitForSelector("#users tbody tr");
  out.basics = await pageBasics(page);

  // add a user, with the keyboard only: focus the first field, type, Tab on, Enter submits
  await page.focus("#new-email");
  await page.keyboard.type(NEW);
  await page.keyboard.press("Tab");
  await page.keyboard.type("Newbie");
  await page.keyboard.press("Tab");
  await page.keyboard.type(A.newPassword);
  await page.keyboard.press("Enter");
  await page.waitForSelector(`#users tr[data-user="${NEW}"]`);
  out.added = await page.locator(`#users tr[data-user="${NEW}"]`).innerText();

  // add a group, then grant the new user Read on the workflow (its ID is the group) until a date
  await page.getByLabel("ID", { exact: true }).fill("Editors");
  await page.getByLabel("Name", { exact: true }).nth(1).fill("The editors");
  await page.getByRole("button", { name: "Add group" }).click();
  await page.waitForSelector('#groups tr[data-group="Editors"]');
  const until = inDays(30);
  await page.selectOption("#grant-group", A.workflow);
  await page.selectOption("#grant-user", NEW);
  await page.selectOption("#grant-level", "read");
  await page.fill("#grant-expires", until);
  await page.getByRole("button", { name: "Grant" }).click();
  await page.waitForFunction((u) => document.querySelector(`#users tr[data-user="${u}"]`)?.innerText.includes("read"), NEW);
  out.until = until;
  out.grantedRow = await page.locator(`#users tr[data-user="${NEW}"]`).innerText();
  out.groupRow = await page.locator(`#groups tr[data-group="${A.workflow}"]`).innerText();

  // mint a key for them: shown once, with a Copy button that copies it
  await page.getByRole("button", { name: `API keys of ${NEW}` }).click();
  await page.getByLabel("Label").fill("from the admin page");
  await page.getByRole("button", { name: "Create key" }).click();
  await page.waitForSelector("#one-time-key");
  out.key = await page.inputValue("#one-time-key");
  await page.getByRole("button", { name: "Copy" }).click();
  await page.waitForFunction(() => document.querySelector(".one-time .status")?.textContent.includes("Copied"));
  out.copied = await page.evaluate(() => navigator.clipboard.readText());
  out.keyRows = await page.locator("table.keys tbody tr").count();
  await shot(page, "ui-admin");
  await page.getByRole("button", { name: "Done" }).click();
  out.keyGone = (await page.locator("#one-time-key").count()) === 0;

  // remove a user (confirmed in a dialog)
  await page.fill("#new-email", "temp@example.com");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.waitForSelector('#users tr[data-user="temp@example.com"]');
  page.once("dialog", (d) => { out.confirm = d.message(); d.accept(); });
  await page.getByRole("button", { name: "Remove temp@example.com" }).click();
  await page.waitForSelector('#users tr[data-user="temp@example.com"]', { state: "detached" });
  out.removed = true;

  // narrow: no sideways scroll of the page, the menu opens
  await page.setViewportSize({ width: 390, height: 800 });
  out.narrow = await pageBasics(page);
  await page.getByRole("button", { name: "Menu" }).click();
  out.narrowMenu = await page.locator("#main-nav").isVisible();
  await shot(page, "ui-admin-390");
  out.problems = problems;

  // a normal user: no Admin in the nav, the page says it is for admins, the API refuses the forced request
  const { page: joe, problems: joeProblems } = await loginAs(browser, A.base, A.normal, A.password);
  out.normalNav = await joe.locator("#main-nav a").allInnerTexts();
  await joe.goto(A.base + "/ui/admin");
  await joe.waitForSelector("#admins-only");
  out.normalText = await joe.locator("#admins-only").innerText();
  out.normalBasics = await pageBasics(joe);
  out.forced = await joe.evaluate(async () => {
    const me = await (await fetch("/auth/me")).json();
    const r = await fetch("/auth/users", { method: "POST", headers: { "content-type": "application/json",
      "x-csrf-token": me.csrf }, body: JSON.stringify({ email: "intruder@example.com", admin: true }) });
    return { status: r.status, body: await r.json() };
  });
  out.normalProblems = joeProblems.filter((p) => !p.includes("/auth/users") && !p.includes("status of 403"));  // the forced request's 403
});

// The profile page: who I am and my groups (expiry in local time); make a key (shown once, copied) and
// hand it to the test; then (second phase) revoke it, and change my password.
//   node tests/ui/profile.mjs '{"base", "email", "password", "newPassword", "phase": "key" | "revoke"}'
import { loginAs, main, pageBasics, shot } from "./app.mjs";

const A = JSON.parse(process.argv[2]);

await main(async (browser, out) => {
  const { page, problems } = await loginAs(browser, A.base, A.email, A.password);
  await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: A.base });
  // the user's name in the header leads to the profile
  await page.locator("header .who a").click();
  await page.waitForSelector("#identity");
  await page.waitForSelector("table.keys, .card p.hint");
  out.basics = await pageBasics(page);
  out.identity = await page.locator("#identity").innerText();
  out.groups = await page.locator("#my-groups tbody tr").allInnerTexts();
  out.localExpiry = await page.evaluate((iso) => new Date(iso).toLocaleString([], { hour12: false }), A.expires || null);

  if (A.phase === "key") {
    // keyboard: Tab into the label, type, Enter makes the key
    await page.focus("#my-key-label");
    await page.keyboard.type("laptop");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#one-time-key");
    out.key = await page.inputValue("#one-time-key");
    out.focusedKey = await page.evaluate(() => document.activeElement?.id);
    await page.getByRole("button", { name: "Copy" }).click();
    await page.waitForFunction(() => document.querySelector(".one-time .status")?.textContent.includes("Copied"));
    out.copied = await page.evaluate(() => navigator.clipboard.readText());
    out.keyRows = await page.locator("table.keys tbody tr").allInnerTexts();
    await shot(page, "ui-profile");
    await page.setViewportSize({ width: 390, height: 800 });
    out.narrow = await pageBasics(page);
    await shot(page, "ui-profile-390");
    // reloaded, the page shows the key's ID, never the key
    await page.reload();
    await page.waitForSelector("table.keys tbody tr");
    out.afterReload = await page.content();
  } else {
    // revoke the key made in the first phase, then change the password
    const row = page.locator("table.keys tbody tr", { hasText: "laptop" });
    await row.getByRole("button", { name: /Revoke/ }).click();
    await page.waitForFunction(() => document.querySelector("#keys-status")?.textContent.includes("revoked"));
    await row.getByText(/^revoked/).waitFor();  // the list, fetched again, says so
    out.revokedRow = await row.innerText();
    await page.fill("#current-password", "not my password");
    await page.fill("#new-password", A.newPassword);
    await page.fill("#again-password", A.newPassword);
    await page.getByRole("button", { name: "Change password" }).click();
    out.wrongCurrent = await page.locator("#password-form .error").innerText();
    await page.fill("#current-password", A.password);
    await page.getByRole("button", { name: "Change password" }).click();
    await page.waitForFunction(() => document.querySelector("#password-status")?.textContent.includes("changed"));
    out.changed = await page.locator("#password-status").innerText();
    out.stillIn = await page.evaluate(async () => (await fetch("/auth/me")).status);
    out.problems = problems.filter((p) => !p.includes("/auth/password") && !p.includes("status of 403"));  // the wrong current password's 403
  }
  if (A.phase === "key") out.problems = problems;
});

// Shared by the web app's browser tests: log in through the real login page, save screenshots,
// check what every page must have (a title, landmarks, no horizontal scroll at 390 px).
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { launch, newPage } from "./browser.mjs";

export { launch, newPage };

export const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "test-artifacts");

/** A page logged in as `email` through /ui/login (the form, as a person would). */
export async function loginAs(browser, base, email, password, viewport) {
  const { page, problems } = await newPage(browser, viewport);
  await page.goto(base + "/ui/login");
  await waitFor(page, "form input#email", problems);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForSelector("header.top nav", { timeout: 15000 });
  // before the login the app asked /auth/me as a guest (401, and Chromium's console line for it):
  // expected; from here on, every problem counts
  problems.length = 0;
  return { page, problems };
}

/** Wait for `selector`; on a timeout, fail with what the page shows and the problems it recorded. */
export async function waitFor(page, selector, problems = [], timeout = 60000) {
  try {
    return await page.waitForSelector(selector, { timeout });
  } catch (e) {
    const text = await page.evaluate(() => document.body?.innerText?.slice(0, 600)).catch(() => "?");
    throw new Error(`${selector} did not appear at ${page.url()}: ${e.message.split("\n")[0]}; ` +
                    `page text: ${JSON.stringify(text)}; problems: ${JSON.stringify(problems)}`);
  }
}

/** Save a screenshot as test-artifacts/<name>.png. */
export async function shot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** What every page must have: a title, a main landmark, one h1; and at 390 px no sideways scroll. */
export async function pageBasics(page) {
  return page.evaluate(() => ({
    title: document.title,
    main: document.querySelectorAll("main").length,
    nav: document.querySelectorAll("nav").length,
    h1: Array.from(document.querySelectorAll("h1")).map((h) => h.textContent.trim()),
    overflowX: document.documentElement.scrollWidth > window.innerWidth + 1,
  }));
}

/** Run `body(out)` with a browser; print `out` (or {error}) as the last line of JSON. */
export async function main(body) {
  const out = {};
  const browser = await launch();
  try {
    await body(browser, out);
  } catch (e) {
    out.error = String(e && e.stack || e);
  } finally {
    await browser.close();
  }
  console.log(JSON.stringify(out));
}

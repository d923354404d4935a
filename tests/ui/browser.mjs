// Shared by the browser tests and bench/flows_page.py: headless Chromium from the system
// (playwright-core never downloads a browser), flags that keep it off the network.
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.COFLOWS_CHROMIUM || "/usr/bin/chromium";

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/** A page that records its own errors (uncaught exceptions, console errors, failed requests). */
export async function newPage(browser, viewport = { width: 1280, height: 860 }) {
  const page = await browser.newPage({ viewport });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`http ${r.status()}: ${r.url()}`); });
  page.on("requestfailed", (r) => {
    // aborted by the browser (a closed EventSource, or fetches still in flight when the test moves
    // to another page): not a failure of the app; a server that fails gives another error text
    const error = r.failure()?.errorText || "";
    if (!r.url().includes("/events") && error !== "net::ERR_ABORTED") problems.push(`requestfailed: ${r.url()} ${error}`);
  });
  return { page, problems };
}

/** Wait until the DAG page has drawn its run (window.coflowsDag.ready). */
export async function waitReady(page, timeout = 15000) {
  await page.waitForFunction(() => window.coflowsDag?.ready === true, null, { timeout });
}

/** Make `page` a guest of the web app (what "Continue without logging in" does): no login page. */
export async function asGuest(page) {
  await page.addInitScript(() => sessionStorage.setItem("coflows.guest", "1"));
}

/** A guest's page asks /auth/me first and gets a 401 (and Chromium logs it): drop those lines. */
export function withoutGuestNoise(problems) {
  const noise = (p) => p.includes("/auth/me") || (p.startsWith("console:") && p.includes("status of 401"));
  return problems.filter((p) => !noise(p));
}

/** Open the DAG page at `url` (as a guest: no key, no login) and wait until it has drawn;
 * `navigations()` counts main-frame loads. */
export async function openRunPage(browser, url, { guest = false } = {}) {
  const { page, problems } = await newPage(browser);
  if (guest) await asGuest(page);
  let count = 0;
  page.on("framenavigated", (f) => { if (f === page.mainFrame()) count += 1; });
  await page.goto(url);
  await waitReady(page);
  return { page, problems, navigations: () => count };
}

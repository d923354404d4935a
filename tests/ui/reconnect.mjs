// The live page across a server restart: the event stream drops, EventSource reconnects by
// itself, and the page reads the run once to catch up (what happened while it was away).
//   node tests/ui/reconnect.mjs '{"url", "node", "ready": file this script creates when live,
//                                 "release": file the task waits for, "screenshot"}'
// The test kills and restarts the server once "ready" exists.
import { writeFileSync } from "node:fs";

import { launch, openRunPage, withoutGuestNoise } from "./browser.mjs";

const args = JSON.parse(process.argv[2]);
const out = {};
const browser = await launch();
try {
  const { page, problems, navigations } = await openRunPage(browser, args.url, { guest: !args.url.includes("_cokey") });
  await page.waitForFunction((n) => window.coflowsDag.live && window.coflowsDag.state(n) === "running",
    args.node, { timeout: 10000 });
  writeFileSync(args.ready, "live");
  // the server goes away: the page says so, then comes back on its own
  await page.waitForFunction(() => !window.coflowsDag.live, null, { timeout: 20000 });
  out.offline = await page.textContent("#live");
  await page.waitForFunction(() => window.coflowsDag.opens >= 2 && window.coflowsDag.live, null, { timeout: 30000 });
  writeFileSync(args.release, "go");
  await page.waitForFunction(() => window.coflowsDag.run().state === "finished", null, { timeout: 20000 });
  out.navigations = navigations();
  out.opens = await page.evaluate(() => window.coflowsDag.opens);
  out.history = await page.evaluate(() => window.coflowsDag.history());
  out.loads = await page.evaluate(() => window.coflowsDag.loads);
  out.attempts = await page.textContent(`tr[data-node="${args.node}"] td:nth-child(3)`);
  out.state = await page.evaluate((n) => window.coflowsDag.state(n), args.node);
  out.row = await page.getAttribute(`tr[data-node="${args.node}"]`, "data-state");
  await page.screenshot({ path: args.screenshot });
  // a dropped stream shows up as a failed request or a console error: those are expected here
  const dropped = ["/events", "ERR_CONNECTION_REFUSED", "ERR_INCOMPLETE_CHUNKED_ENCODING"];
  out.problems = withoutGuestNoise(problems).filter((p) => !dropped.some((d) => p.includes(d)));
} catch (err) {
  out.error = String(err?.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

// Drives the live DAG page in headless Chromium and prints what it saw as JSON (one line).
//   node tests/ui/live_run.mjs '{"url": ..., "node": "wait", "release": "/path", "screenshot": ..., "mapUrl": ...}'
// It opens a running flow, checks the controlled node is drawn as running, creates the release
// file (the task waits for it), then waits for the node to turn finished without reloading,
// clicks the node on the canvas and reads the details panel, and saves screenshots.
import { writeFileSync } from "node:fs";

import { launch, openRunPage, waitReady } from "./browser.mjs";

const args = JSON.parse(process.argv[2]);
const out = { steps: [] };
const browser = await launch();
try {
  const { page, problems, navigations } = await openRunPage(browser, args.url);
  await page.waitForFunction(() => window.coflowsDag.live, null, { timeout: 10000 });
  await page.evaluate(() => { window.__sameDocument = "token"; });
  out.before = await page.evaluate((n) => ({ state: window.coflowsDag.state(n), drawn: window.coflowsDag.node(n),
    row: document.querySelector(`tr[data-node="${CSS.escape(n)}"]`)?.dataset.state }), args.node);
  out.steps.push("saw-before");
  if (args.runningScreenshot) await page.screenshot({ path: args.runningScreenshot });

  writeFileSync(args.release, "go");  // the task inserts a node, then waits again
  await page.waitForFunction(() => window.coflowsDag.node("checked") !== null, null, { timeout: 15000 });
  out.inserted = await page.evaluate(() => ({
    checked: window.coflowsDag.task("checked"), report: window.coflowsDag.task("report"),
    drawnReport: window.coflowsDag.node("report"), drawnChecked: window.coflowsDag.node("checked"),
    loads: window.coflowsDag.loads.slice() }));
  writeFileSync(args.then, "go");  // let it finish
  await page.waitForFunction((n) => window.coflowsDag.state(n) === "finished", args.node, { timeout: 15000 });
  await page.waitForFunction(() => window.coflowsDag.run().state === "finished", null, { timeout: 15000 });
  out.after = await page.evaluate((n) => ({ state: window.coflowsDag.state(n), drawn: window.coflowsDag.node(n),
    row: document.querySelector(`tr[data-node="${CSS.escape(n)}"]`)?.dataset.state,
    sameDocument: window.__sameDocument === "token", opens: window.coflowsDag.opens,
    history: window.coflowsDag.history() }), args.node);
  out.navigations = navigations();
  out.hinted = args.hinted ? await page.evaluate((n) => window.coflowsDag.node(n), args.hinted) : null;
  out.steps.push("saw-after");

  // a real click on the canvas, where the node is drawn
  const box = await page.locator("#graph").boundingBox();
  const at = await page.evaluate((n) => window.coflowsDag.position(n), args.node);
  await page.mouse.click(box.x + at.x, box.y + at.y);
  await page.waitForSelector(`#details[data-node="${args.node}"] dd[data-field="output"]`, { timeout: 10000 });
  out.details = await page.evaluate(() => Object.fromEntries(
    [...document.querySelectorAll("#details dd[data-field]")].map((dd) => [dd.dataset.field, dd.textContent])));
  out.details.title = await page.textContent("#details-title");
  out.steps.push("clicked");
  await page.screenshot({ path: args.screenshot });
  out.screenshot = args.screenshot;

  if (args.mapUrl) {
    // the map expands while the page is open: its items arrive as graph events
    await page.goto(args.mapUrl);
    await waitReady(page);
    await page.waitForFunction(() => window.coflowsDag.live, null, { timeout: 10000 });
    out.mapBefore = await page.evaluate((names) => Object.fromEntries(names.map((n) => [n, window.coflowsDag.node(n)])),
      args.mapNodes);
    writeFileSync(args.mapRelease, "go");
    await page.waitForFunction(() => window.coflowsDag.run().state === "finished", null, { timeout: 15000 });
    await page.waitForFunction(() => !window.coflowsDag.live, null, { timeout: 5000 });  // final fetch done
    out.mapHistory = await page.evaluate(() => window.coflowsDag.history());
    out.map = await page.evaluate((names) => Object.fromEntries(names.map((n) => [n, window.coflowsDag.node(n)])),
      args.mapNodes);
    out.mapRows = await page.locator("#tasks tbody tr").count();
    await page.screenshot({ path: args.mapScreenshot });
    out.steps.push("map");
  }
  if (args.listUrl) {  // the list of runs
    await page.goto(args.listUrl);
    await page.waitForSelector(`tr[data-run="${args.runId}"]`, { timeout: 10000 });
    out.list = await page.evaluate(() => [...document.querySelectorAll("#runs tbody tr")].map((tr) => ({
      id: tr.dataset.run, state: tr.dataset.state, href: tr.querySelector("a").getAttribute("href"),
      tasks: tr.cells[3].textContent })));
    await page.screenshot({ path: args.listScreenshot });
    out.steps.push("list");
  }
  out.problems = problems;
} catch (err) {
  out.error = String(err?.stack || err);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));

// Times the DAG page in headless Chromium: for each URL, navigation start → graph drawn
// (window.coflowsDag.ready, after layout and two animation frames; the app's own start included),
// in interleaved rounds. The pages are opened as a guest of the app (a public workflow, no login).
//   node tests/ui/render_time.mjs '{"urls": {"name": url, ...}, "rounds": 5, "warmup": 1, "screenshotDir"?: dir}'
// Prints {"name": [{readyMs, layoutMs, fetchMs, wallMs, nodes}, ...], ...} as one JSON line.
import { asGuest, launch, newPage, waitReady, withoutGuestNoise } from "./browser.mjs";

const args = JSON.parse(process.argv[2]);
const samples = Object.fromEntries(Object.keys(args.urls).map((k) => [k, []]));
const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  for (let round = -(args.warmup ?? 1); round < (args.rounds ?? 5); round++) {
    for (const [name, url] of Object.entries(args.urls)) {
      const { page, problems: seen } = await newPage(context);
      await asGuest(page);  // the bench's workflow is public: no login page, no key
      const t0 = Date.now();
      await page.goto(url);
      await waitReady(page, 60000);
      const wallMs = Date.now() - t0;
      const t = await page.evaluate(() => ({ ...window.coflowsDag.timings, nodes: window.coflowsDag.nodes().length,
        drawn: document.querySelectorAll("#tasks tbody tr").length }));
      const problems = withoutGuestNoise(seen);
      if (problems.length) throw new Error(`${name}: ${problems.join("; ")}`);
      if (round >= 0) samples[name].push({ ...t, wallMs });
      if (args.screenshotDir && round === (args.rounds ?? 5) - 1) {
        await page.screenshot({ path: `${args.screenshotDir}/ui-${name}.png` });
      }
      await page.close();
    }
  }
  console.log(JSON.stringify(samples));
} finally {
  await browser.close();
}

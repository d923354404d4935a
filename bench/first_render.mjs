// Time to first render of web app pages for a logged-in user, in headless Chromium: for each URL,
// navigation start → the page's own marker (window.coflowsApp.rendered[<name>], set two animation
// frames after its content is committed: the dashboard's cards, the M topic's first page), in
// interleaved rounds, each in a fresh tab of one logged-in context (the session cookie).
//   node bench/first_render.mjs '{"base", "email", "password", "pages": {"name": {"url", "marker"}}, "rounds": 7,
//                                 "warmup": 1, "screenshotDir"?: dir}'
// Prints {"name": [{renderedMs, responseMs, domMs, wallMs, rows}, ...], ...} as one JSON line.
import { launch, newPage } from "../tests/ui/browser.mjs";

const args = JSON.parse(process.argv[2]);
const samples = Object.fromEntries(Object.keys(args.pages).map((k) => [k, []]));
const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const login = await context.request.post(args.base + "/auth/login", { data: { email: args.email, password: args.password } });
  if (!login.ok()) throw new Error(`login: ${login.status()} ${await login.text()}`);
  const rounds = args.rounds ?? 7;
  for (let round = -(args.warmup ?? 1); round < rounds; round++) {
    for (const [name, { url, marker }] of Object.entries(args.pages)) {
      const { page, problems } = await newPage(context);
      const t0 = Date.now();
      await page.goto(url);
      await page.waitForFunction((m) => window.coflowsApp?.rendered?.[m] !== undefined, marker, { timeout: 60000 });
      const wallMs = Date.now() - t0;
      const t = await page.evaluate((m) => {
        const nav = performance.getEntriesByType("navigation")[0];
        return {
          renderedMs: window.coflowsApp.rendered[m],
          responseMs: nav.responseEnd,
          domMs: nav.domContentLoadedEventEnd,
          rows: document.querySelectorAll("main table tbody tr, main .workflow-card").length,
        };
      }, marker);
      if (problems.length) throw new Error(`${name}: ${problems.join("; ")}`);
      if (round >= 0) samples[name].push({ ...t, wallMs });
      if (args.screenshotDir && round === rounds - 1) await page.screenshot({ path: `${args.screenshotDir}/ui-first-${name}.png` });
      await page.close();
    }
  }
  console.log(JSON.stringify(samples));
} finally {
  await browser.close();
}

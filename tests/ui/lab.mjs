// JupyterLab at /lab: a guest is sent to the login page, logs in and comes back to /lab, opens a
// notebook on the "coflows" kernel, runs cells and sees their output.
//   node tests/ui/lab.mjs '{"base", "email", "password"}'
import { main, newPage, shot } from "./app.mjs";

const A = JSON.parse(process.argv[2]);

await main(async (browser, out) => {
  const { page, problems } = await newPage(browser, { width: 1280, height: 860 });
  await page.goto(A.base + "/lab/lab");
  out.loginUrl = new URL(page.url()).pathname + new URL(page.url()).search;
  await page.getByLabel("Email").fill(A.email);
  await page.getByLabel("Password").fill(A.password);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL((u) => u.pathname.startsWith("/lab/lab"), { timeout: 30000 });
  out.afterLogin = new URL(page.url()).pathname;
  problems.length = 0;  // before the login the app asked /auth/me as a guest (401): expected
  // the launcher offers a notebook on the coflows kernel
  const card = page.locator('.jp-LauncherCard[data-category="Notebook"][title^="coflows"]');
  await card.first().waitFor({ timeout: 60000 });
  out.cards = await page.locator('.jp-LauncherCard[data-category="Notebook"]').evaluateAll(
    (els) => els.map((e) => e.getAttribute("title")));
  await card.first().click();
  await page.waitForSelector(".jp-NotebookPanel .jp-Cell .cm-content", { timeout: 60000 });
  // the kernel is up when the status bar says "coflows (…) | Idle"
  await page.locator(".jp-StatusBar-Widget", { hasText: /coflows.*\| Idle/ }).first().waitFor({ timeout: 90000 });
  out.kernelName = (await page.locator(".jp-NotebookPanel .jp-KernelName, .jp-Toolbar-kernelName").first()
    .innerText().catch(() => "")).trim();

  async function runCell(code, n) {
    const cell = page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(n);
    const editor = cell.locator(".cm-content");
    for (let attempt = 0; ; attempt++) {  // typing into an editor that is not ready yet is lost: type again
      await editor.click();
      await page.keyboard.press("Control+A");
      await page.keyboard.type(code);
      if ((await editor.innerText()).replace(/\s+/g, "") === code.replace(/\s+/g, "")) break;
      if (attempt === 3) throw new Error(`could not type into cell ${n}: ${await editor.innerText()}`);
      await page.waitForTimeout(500);
    }
    const started = Date.now();
    await page.keyboard.press("Shift+Enter");
    const output = cell.locator(".jp-OutputArea-output");
    await output.first().waitFor({ timeout: 90000 });
    await page.waitForFunction((i) => {
      const c = document.querySelectorAll(".jp-NotebookPanel .jp-Notebook .jp-Cell")[i];
      const p = c && c.querySelector(".jp-InputArea-prompt");
      return p && /\[\d+\]/.test(p.textContent);
    }, n, { timeout: 90000 });
    return { text: (await output.allInnerTexts()).join("\n").trim(), ms: Date.now() - started };
  }

  try {
    out.add = await runCell('import coflows\ncoflows.call("Calc.py/Add", 1, 2)', 0);
  } catch (e) {
    await shot(page, "ui-lab-failed");
    out.failedProblems = problems;
    throw e;
  }
  out.user = await runCell("coflows.user().id", 1);
  out.js = await runCell('coflows.call("Hello.js/hello", "browser")', 2);
  await shot(page, "ui-lab");
  // JupyterLab's own noise (its optional extension manager, a favicon) is reported, not failed on
  out.problems = problems.filter((p) => !/\/lab\/api\/(lsp|extensions|translations)|favicon/.test(p));
});

// Loads one page in headless Chromium and waits until it has set
// body[data-results] (JSON); prints {"ok": true, "results": ...} as one line.
// compat_test/browser_test.go serves a page from another origin than the
// Socket.IO servers it connects to.
//   node browser-origin-test.js URL
const { chromium } = require("playwright-core");
(async () => {
  const [url] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage();
    const consoleLines = [];
    page.on("console", (m) => consoleLines.push(m.text()));
    await page.goto(url);
    await page.waitForSelector("body[data-results]", { state: "attached", timeout: 30000 });
    const results = JSON.parse(await page.$eval("body", (b) => b.dataset.results));
    process.stdout.write(JSON.stringify({ ok: true, results, console: consoleLines }) + "\n");
  } finally {
    await browser.close();
  }
})().catch((e) => { process.stdout.write(JSON.stringify({ ok: false, error: String(e) }) + "\n"); process.exit(1); });

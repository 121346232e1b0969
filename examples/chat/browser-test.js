// Drives two headless Chromium pages through the chat: both join a room,
// each sends a message, each must see the other's. Prints one JSON line.
//   node browser-test.js URL SCREENSHOT.png
const { chromium } = require("playwright-core");
(async () => {
  const [url, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  try {
    const pages = [];
    for (const name of ["alice", "bob"]) {
      const page = await browser.newPage();
      await page.goto(url);
      await page.fill("#name", name);
      await page.fill("#room", "lobby");
      await page.click("#join button");
      await page.waitForSelector("body[data-joined=yes]", { timeout: 10000 });
      pages.push(page);
    }
    const [alice, bob] = pages;
    await alice.fill("#text", "hello from alice");
    await alice.click("#say button");
    await bob.waitForSelector("#log p:has-text('alice: hello from alice')", { timeout: 10000 });
    await bob.fill("#text", "hi alice, bob here");
    await bob.click("#say button");
    await alice.waitForSelector("#log p:has-text('bob: hi alice, bob here')", { timeout: 10000 });
    await alice.screenshot({ path: shot, fullPage: true });
    const logA = await alice.$$eval("#log p", (ps) => ps.map((p) => p.textContent));
    const logB = await bob.$$eval("#log p", (ps) => ps.map((p) => p.textContent));
    process.stdout.write(JSON.stringify({ ok: true, alice: logA, bob: logB }) + "\n");
  } finally {
    await browser.close();
  }
})().catch((e) => { process.stdout.write(JSON.stringify({ ok: false, error: String(e) }) + "\n"); process.exit(1); });

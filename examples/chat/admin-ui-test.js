// Drives the Socket.IO Admin UI (served by the Go server at /admin/) in
// headless Chromium: fills its connection form, then checks that the
// Sockets page lists a given socket and that the Rooms page and the
// socket's page list its room. Prints one JSON line.
//   node admin-ui-test.js ORIGIN USER PASSWORD SID ROOM SCREENSHOT.png
const { chromium } = require("playwright-core");
(async () => {
  const [origin, user, password, sid, room, shot] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const steps = [];
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    // the UI links web fonts and icons from CDNs, which this machine cannot reach
    await page.route("**/*", (r) => (r.request().url().startsWith(origin) ? r.continue() : r.abort()));
    await page.goto(origin + "/admin/");
    await page.getByLabel("Server URL").fill(origin);
    await page.getByLabel("Username").fill(user);
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByRole("dialog").waitFor({ state: "hidden", timeout: 15000 });
    steps.push("logged in");

    await page.goto(origin + "/admin/#/sockets/");
    await page.getByText(sid, { exact: true }).first().waitFor({ timeout: 15000 });
    steps.push("sockets page lists " + sid);

    await page.goto(origin + "/admin/#/rooms/");
    await page.getByText(room, { exact: true }).first().waitFor({ timeout: 15000 });
    steps.push("rooms page lists " + room);

    await page.goto(origin + "/admin/#/n/" + encodeURIComponent("/") + "/sockets/" + sid);
    await page.getByText(room, { exact: true }).first().waitFor({ timeout: 15000 });
    steps.push("socket page lists " + room);
    await page.screenshot({ path: shot, fullPage: true });
    const text = await page.locator("body").innerText();
    process.stdout.write(JSON.stringify({ ok: true, steps, text }) + "\n");
  } finally {
    await browser.close();
  }
})().catch((e) => { process.stdout.write(JSON.stringify({ ok: false, error: String(e) }) + "\n"); process.exit(1); });

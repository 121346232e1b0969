// Drives the Socket.IO Admin UI (served by the Go server at /admin/) in
// headless Chromium: fills its connection form, then checks that the
// Sockets page lists a given socket and that the Rooms page and the
// socket's page list its room; records every request the page makes
// (those to another host are aborted and listed in "external", local ones
// that failed in "failed") and the state of the page's fonts ("fonts",
// "iconFont": the font family of an icon's glyph). Prints one JSON line.
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
    // every request is the server's: another host (a CDN) is a failure,
    // aborted at once rather than waited for (this machine reaches none)
    const external = [], failed = [];
    await page.route("**/*", (r) => {
      if (r.request().url().startsWith(origin + "/")) return r.continue();
      external.push(r.request().url());
      return r.abort();
    });
    page.on("requestfailed", (r) => { if (r.url().startsWith(origin + "/")) failed.push(r.url() + " " + (r.failure() || {}).errorText); });
    page.on("response", (r) => { if (r.status() >= 400) failed.push(r.url() + " " + r.status()); });
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
    // the sockets page shows icons (mdi-logout ...): their font loads
    await page.waitForFunction(() => [...document.fonts].some((f) => f.family.replace(/"/g, "") === "Material Design Icons" && f.status === "loaded"), null, { timeout: 15000 });
    steps.push("icon font loaded");

    await page.goto(origin + "/admin/#/rooms/");
    await page.getByText(room, { exact: true }).first().waitFor({ timeout: 15000 });
    steps.push("rooms page lists " + room);

    await page.goto(origin + "/admin/#/n/" + encodeURIComponent("/") + "/sockets/" + sid);
    await page.getByText(room, { exact: true }).first().waitFor({ timeout: 15000 });
    steps.push("socket page lists " + room);
    await page.screenshot({ path: shot, fullPage: true });
    const text = await page.locator("body").innerText();
    const fonts = await page.evaluate(async () => {
      await document.fonts.ready;
      const icon = document.querySelector(".mdi");
      return {
        faces: [...document.fonts].map((f) => ({ family: f.family.replace(/"/g, ""), status: f.status })),
        check: document.fonts.check('24px "Material Design Icons"'),
        iconFont: icon ? getComputedStyle(icon, "::before").fontFamily : "",
      };
    });
    process.stdout.write(JSON.stringify({ ok: true, steps, text, external, failed, fonts }) + "\n");
  } finally {
    await browser.close();
  }
})().catch((e) => { process.stdout.write(JSON.stringify({ ok: false, error: String(e) }) + "\n"); process.exit(1); });

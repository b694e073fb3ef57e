// Drive Swagger UI at /docs/ in Debian's chromium through playwright-core (never downloads
// a browser). Usage: node swagger_ui.cjs <base-url> <screenshot.png> <chromium-path>
// NODE_PATH must point at tools/swagger/node_modules. Prints one JSON object on stdout.
"use strict";
const { chromium } = require("playwright-core");

const [base, screenshot, executablePath] = process.argv.slice(2);
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-dev-shm-usage",
];

async function main() {
  const result = { services: [], operations: [], status: null, requests: [], errors: [] };
  const browser = await chromium.launch({ executablePath, headless: true, args: FLAGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    page.on("request", (req) => result.requests.push(req.url()));
    page.on("pageerror", (err) => result.errors.push(String(err)));
    page.on("console", (msg) => {
      if (msg.type() === "error") result.errors.push(msg.text());
    });
    await page.goto(`${base}/docs/`, { waitUntil: "load", timeout: 20000 });

    // the topbar's definition list: one option per docs/openapi/*.json
    const select = page.locator(".topbar .download-url-wrapper select");
    await select.waitFor({ timeout: 20000 });
    result.services = await select.locator("option").allTextContents();
    // the first document listed is shown first: pick departments' by name
    await select.selectOption({ label: "departments" });
    await page
      .locator('.opblock-summary-path[data-path="/v1/departments"]')
      .first()
      .waitFor({ timeout: 20000 });

    const summaries = page.locator(".opblock .opblock-summary");
    await summaries.first().waitFor({ timeout: 20000 });
    for (const summary of await summaries.all()) {
      const method = (await summary.locator(".opblock-summary-method").textContent()) || "";
      const path = (await summary.locator(".opblock-summary-path").getAttribute("data-path")) || "";
      result.operations.push(`${method.trim()} ${path}`);
    }

    const list = page
      .locator(".opblock.opblock-get")
      .filter({ has: page.locator('.opblock-summary-path[data-path="/v1/departments"]') })
      .first();
    await list.locator(".opblock-summary").click();
    await list.locator("button.try-out__btn").click();
    await list.locator("button.execute").click();
    const status = list.locator(".live-responses-table .response .response-col_status").first();
    await status.waitFor({ timeout: 20000 });
    result.status = ((await status.textContent()) || "").trim();
    result.request_url = ((await list.locator(".request-url pre").first().textContent()) || "").trim();
    await list.scrollIntoViewIfNeeded();
    await page.screenshot({ path: screenshot, fullPage: true });
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(result) + "\n");
}

main().catch((err) => {
  process.stderr.write(`swagger_ui.cjs: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});

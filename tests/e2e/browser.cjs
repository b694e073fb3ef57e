// What the browser tests share: Debian's chromium through playwright-core (never downloads
// a browser; NODE_PATH must point at tools/swagger/node_modules), and one JSON object on
// stdout as the result of a run.
"use strict";
const { chromium } = require("playwright-core");

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

// run(executablePath, async (browser, result) => {...}): result is printed as JSON
function run(name, executablePath, body) {
  (async () => {
    const result = {};
    const browser = await chromium.launch({ executablePath, headless: true, args: FLAGS });
    try {
      await body(browser, result);
    } finally {
      await browser.close();
    }
    process.stdout.write(JSON.stringify(result) + "\n");
  })().catch((err) => {
    process.stderr.write(`${name}: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}

// every request URL, page error and console error of `page` into `result`
function watch(page, result) {
  result.requests = [];
  result.errors = [];
  page.on("request", (req) => result.requests.push(req.url()));
  page.on("pageerror", (err) => result.errors.push(String(err)));
  page.on("console", (msg) => {
    if (msg.type() === "error") result.errors.push(msg.text());
  });
}

// the account page's status line (nginx/pages/account.html): its state, code and text
function status(page) {
  return page.evaluate(() => {
    const element = document.getElementById("status");
    return { state: element.dataset.state, code: element.dataset.code, text: element.textContent.trim() };
  });
}

// click `button` and wait for the account page's status to say `code` (or an error)
async function step(page, button, code) {
  await page.locator(button).click();
  await page.locator(`#status[data-code="${code}"], #status[data-state="error"]`).waitFor({ timeout: 20000 });
  return status(page);
}

module.exports = { run, watch, status, step };

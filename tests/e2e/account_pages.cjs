// The account pages (nginx/pages/) in Debian's chromium, on a phone-sized screen.
// Usage: node account_pages.cjs <chromium-path> <scenario.json>
// scenario: {url, screenshot, renew_email?, passwords?: [[first, second, screenshot?], ...]}
//   verify page: open url, wait for the outcome;
//   reset page: each [first, second] is typed and submitted in turn; after each, the field
//   errors, the status and the number of API requests so far are recorded.
// NODE_PATH: tools/swagger/node_modules. Prints one JSON object on stdout.
"use strict";
const fs = require("fs");
const { run, watch } = require("./browser.cjs");

const [executablePath, scenarioFile] = process.argv.slice(2);
const scenario = JSON.parse(fs.readFileSync(scenarioFile, "utf8"));
const DONE = '#status[data-state="ok"], #status[data-state="error"]';

// what the page shows now (read at once: an element a page lacks is simply "")
function outcome(page) {
  return page.evaluate(() => {
    const text = (id) => ((document.getElementById(id) || {}).textContent || "").trim();
    const status = document.getElementById("status");
    const renew = document.getElementById("renew");
    return {
      state: status.dataset.state,
      code: status.dataset.code || "",
      text: text("status"),
      password_error: text("password-error"),
      confirm_error: text("confirm-error"),
      renew_visible: !!renew && !renew.hidden,
      href: window.location.href,
    };
  });
}

run("account_pages.cjs", executablePath, async (browser, result) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const page = await context.newPage();
  watch(page, result);
  result.api_calls = [];
  page.on("request", (req) => {
    if (req.url().includes("/api/")) result.api_calls.push(`${req.method()} ${new URL(req.url()).pathname}`);
  });
  const response = await page.goto(scenario.url, { waitUntil: "load", timeout: 20000 });
  result.headers = response.headers();
  result.loaded_href = await page.evaluate(() => window.location.href);
  result.steps = [];
  if (!scenario.passwords) {
    await page.locator(DONE).waitFor({ timeout: 20000 });
    result.steps.push(await outcome(page));
  }
  if (scenario.renew_email) {
    // "Get a new link": the address typed into the page's form
    await page.locator("#email").fill(scenario.renew_email);
    await page.locator("#renew-form button[type=submit]").click();
    const renewed = page.locator('#renew-status[data-state="ok"], #renew-status[data-state="error"]');
    await renewed.waitFor({ timeout: 20000 });
    result.renewed = {
      state: await renewed.getAttribute("data-state"),
      text: ((await renewed.textContent()) || "").trim(),
    };
  }
  for (const [first, second, shot] of scenario.passwords || []) {
    await page.locator("#password").fill(first);
    await page.locator("#confirm").fill(second);
    const calls = result.api_calls.length;
    await page.locator("#reset-form button[type=submit]").click();
    // refused in the page (a field error, no request), or answered by the API
    await page.waitForFunction(
      () => document.querySelector("#password-error").textContent ||
        document.querySelector("#confirm-error").textContent ||
        ["ok", "error"].includes(document.querySelector("#status").dataset.state),
      null,
      { timeout: 20000 }
    );
    const step = await outcome(page);
    step.requests_sent = result.api_calls.length - calls;
    step.password_invalid = await page.locator("#password").getAttribute("aria-invalid");
    step.focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    result.steps.push(step);
    if (shot) await page.screenshot({ path: shot, fullPage: true });
  }
  result.final_href = await page.evaluate(() => window.location.href);
  result.history_length = await page.evaluate(() => window.history.length);
  await page.screenshot({ path: scenario.screenshot, fullPage: true });
});

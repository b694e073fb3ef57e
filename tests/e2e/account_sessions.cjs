// The account page (nginx/pages/account.html) in Debian's chromium: sign in with the
// password while another session of the account lives, see both listed, end the other one.
// Usage: node account_sessions.cjs <chromium-path> <scenario.json>
// scenario: {url, email, password, screenshot}
// NODE_PATH: tools/swagger/node_modules. Prints one JSON object on stdout.
"use strict";
const fs = require("fs");
const { run, watch, step } = require("./browser.cjs");

const [executablePath, scenarioFile] = process.argv.slice(2);
const scenario = JSON.parse(fs.readFileSync(scenarioFile, "utf8"));

const listed = (page) =>
  page.locator("#sessions li").evaluateAll((items) =>
    items.map((li) => ({ id: li.dataset.id, current: li.dataset.current === "true", text: li.textContent.trim() })),
  );

run("account_sessions.cjs", executablePath, async (browser, result) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const page = await context.newPage();
  watch(page, result);
  await page.goto(scenario.url, { waitUntil: "load", timeout: 20000 });
  await page.locator("#email").fill(scenario.email);
  await page.locator("#password").fill(scenario.password);
  result.signed_in = await step(page, "#sign-in-form button[type=submit]", "SIGNED_IN");
  result.before = await listed(page);
  result.ended = await step(page, '#sessions li[data-current="false"] button', "SESSION_ENDED");
  result.after = await listed(page);
  result.user_agent = await page.evaluate(() => navigator.userAgent);
  await page.screenshot({ path: scenario.screenshot, fullPage: true });
});

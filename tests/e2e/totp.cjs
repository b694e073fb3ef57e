// The account page (nginx/pages/account.html) in Debian's chromium: sign in with the
// password, set up an authenticator app (the service's QR code, the key read off the page),
// turn it on with a first code, see the recovery codes once, sign out, sign in with the
// password and a code; later, the sign-in grown old, turn the app off after confirming with
// the password.
// Usage: node totp.cjs <chromium-path> <scenario.json>
// scenario: {url, email, password, code_command, age_command, screenshots: {enrolment,
// signed_in}}
// code_command: argv that prints the app's code for `<secret> <seconds from now>` (the
// test's pyotp); age_command: argv that makes the account's sign-ins older than
// REAUTH_MAX_AGE (the test's SQL). NODE_PATH: tools/swagger/node_modules. Prints one JSON object on stdout.
"use strict";
const fs = require("fs");
const { execFileSync } = require("child_process");
const { run, watch, step } = require("./browser.cjs");

const [executablePath, scenarioFile] = process.argv.slice(2);
const scenario = JSON.parse(fs.readFileSync(scenarioFile, "utf8"));

function code(secret, offset) {
  const [command, ...args] = scenario.code_command;
  return execFileSync(command, [...args, secret, String(offset)], { encoding: "utf8" }).trim();
}

run("totp.cjs", executablePath, async (browser, result) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const page = await context.newPage();
  watch(page, result);
  result.api_calls = [];
  page.on("request", (req) => {
    if (req.url().includes("/api/")) result.api_calls.push(`${req.method()} ${new URL(req.url()).pathname}`);
  });
  await page.goto(scenario.url, { waitUntil: "load", timeout: 20000 });
  result.steps = {};
  await page.locator("#email").fill(scenario.email);
  await page.locator("#password").fill(scenario.password);
  result.steps.password = await step(page, "#sign-in-form button[type=submit]", "SIGNED_IN");
  result.state_before = ((await page.locator("#totp-state").textContent()) || "").trim();
  result.steps.started = await step(page, "#totp-enrol", "TOTP_STARTED");
  result.secret = ((await page.locator("#totp-secret").textContent()) || "").trim();
  result.otpauth_uri = await page.locator("#totp-uri").getAttribute("href");
  result.qr = await page.locator("#totp-qr svg").evaluateAll((svgs) =>
    svgs.map((svg) => ({ namespace: svg.namespaceURI, width: svg.getBoundingClientRect().width, paths: svg.querySelectorAll("path").length })),
  );
  result.recovery_before_confirm = await page.locator("#recovery-codes li").count();
  await page.screenshot({ path: scenario.screenshots.enrolment, fullPage: true });
  await page.locator("#totp-code").fill(code(result.secret, 0));
  result.steps.confirmed = await step(page, "#totp-confirm-form button[type=submit]", "TOTP_ON");
  result.recovery_codes = await page.locator("#recovery-codes li").allTextContents();
  result.setup_visible = await page.locator("#totp-setup").isVisible();
  result.state_after = ((await page.locator("#totp-state").textContent()) || "").trim();
  result.steps.saved = await step(page, "#recovery-saved", "RECOVERY_CODES_HIDDEN");
  result.recovery_after_saved = await page.locator("#recovery-codes li").count();
  result.steps.signed_out = await step(page, "#sign-out", "SIGNED_OUT");
  await page.locator("#email").fill(scenario.email);
  await page.locator("#password").fill(scenario.password);
  result.steps.owed = await step(page, "#sign-in-form button[type=submit]", "SECOND_FACTOR");
  result.code_form_visible = await page.locator("#second-factor-form").isVisible();
  // a later step than the one that turned the app on: that one is used up
  await page.locator("#sign-in-code").fill(code(result.secret, 30));
  result.steps.code = await step(page, "#second-factor-form button[type=submit]", "SIGNED_IN");
  result.who = ((await page.locator("#who").textContent()) || "").trim();
  result.state_signed_in = ((await page.locator("#totp-state").textContent()) || "").trim();
  result.recovery_after_sign_in = await page.locator("#recovery-codes li").count();
  await page.screenshot({ path: scenario.screenshots.signed_in, fullPage: true });
  const [age, ...ageArgs] = scenario.age_command;
  execFileSync(age, ageArgs);
  result.steps.stale = await step(page, "#totp-remove", "REAUTHENTICATION_REQUIRED");
  result.reauth_visible = await page.locator("#reauth-form").isVisible();
  await page.locator("#reauth-password").fill(scenario.password);
  result.steps.off = await step(page, "#reauth-form button[type=submit]", "TOTP_OFF");
  result.reauth_visible_after = await page.locator("#reauth-form").isVisible();
  result.state_off = ((await page.locator("#totp-state").textContent()) || "").trim();
});

// The account page (nginx/pages/account.html) in Debian's chromium with the browser's own
// virtual authenticator (DevTools' WebAuthn domain: a platform authenticator that keeps
// discoverable credentials and verifies its user): sign in with the password, add a
// passkey, sign out, sign in with the passkey; then, the sign-in grown old, confirm with the
// passkey to set up an authenticator app.
// Usage: node passkeys.cjs <chromium-path> <scenario.json>
// scenario: {url, email, password, age_command, screenshots: {added, signed_in}}
// age_command: argv that makes the account's sign-ins older than REAUTH_MAX_AGE.
// NODE_PATH: tools/swagger/node_modules. Prints one JSON object on stdout.
"use strict";
const fs = require("fs");
const { execFileSync } = require("child_process");
const { run, watch, step } = require("./browser.cjs");

const [executablePath, scenarioFile] = process.argv.slice(2);
const scenario = JSON.parse(fs.readFileSync(scenarioFile, "utf8"));

run("passkeys.cjs", executablePath, async (browser, result) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
  const page = await context.newPage();
  watch(page, result);
  result.api_calls = [];
  page.on("request", (req) => {
    if (req.url().includes("/api/")) result.api_calls.push(`${req.method()} ${new URL(req.url()).pathname}`);
  });
  const cdp = await context.newCDPSession(page);
  await cdp.send("WebAuthn.enable");
  const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
    options: {
      protocol: "ctap2",
      transport: "internal",
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  const credentials = async () =>
    (await cdp.send("WebAuthn.getCredentials", { authenticatorId })).credentials.map((c) => ({
      resident: c.isResidentCredential,
      rp_id: c.rpId,
      sign_count: c.signCount,
      user_handle: c.userHandle,
    }));

  const response = await page.goto(scenario.url, { waitUntil: "load", timeout: 20000 });
  result.headers = response.headers();
  result.steps = {};
  await page.locator("#email").fill(scenario.email);
  await page.locator("#password").fill(scenario.password);
  result.steps.password = await step(page, "#sign-in-form button[type=submit]", "SIGNED_IN");
  await page.locator("#passkey-name").fill("Virtual authenticator");
  result.steps.added = await step(page, "#add-passkey", "PASSKEY_ADDED");
  result.passkeys_listed = await page.locator("#passkeys li").allTextContents();
  result.credentials_after_add = await credentials();
  await page.screenshot({ path: scenario.screenshots.added, fullPage: true });
  result.steps.signed_out = await step(page, "#sign-out", "SIGNED_OUT");
  result.signed_out_visible = await page.locator("#signed-out").isVisible();
  result.steps.passkey = await step(page, "#passkey-sign-in", "SIGNED_IN");
  result.who = ((await page.locator("#who").textContent()) || "").trim();
  result.passkeys_after_sign_in = await page.locator("#passkeys li").allTextContents();
  result.credentials_after_sign_in = await credentials();
  await page.screenshot({ path: scenario.screenshots.signed_in, fullPage: true });
  const [age, ...ageArgs] = scenario.age_command;
  execFileSync(age, ageArgs);
  result.steps.stale = await step(page, "#totp-enrol", "REAUTHENTICATION_REQUIRED");
  result.steps.reauth = await step(page, "#reauth-passkey", "TOTP_STARTED");
  result.credentials_after_reauth = await credentials();
});

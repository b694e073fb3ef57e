// Swagger UI as an ADMIN uses it: POST /v1/auth/login (users document) -> the access token
// pasted into "Authorize" -> POST /v1/departments (departments document), all through NGINX.
// Usage: node swagger_authorize.cjs <base-url> <screenshot.png> <chromium-path> <email>
//        <password> <department-name>   (NODE_PATH: tools/swagger/node_modules)
"use strict";
const { run, watch } = require("./browser.cjs");

const [base, screenshot, executablePath, email, password, department] = process.argv.slice(2);
const WAIT = { timeout: 20000 };

function operation(page, method, path) {
  return page
    .locator(`.opblock.opblock-${method}`)
    .filter({ has: page.locator(`.opblock-summary-path[data-path="${path}"]`) })
    .first();
}

async function execute(op, body) {
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  await op.locator("textarea.body-param__text").fill(JSON.stringify(body));
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table .response .response-col_status").first();
  await status.waitFor(WAIT);
  const text = await op.locator(".live-responses-table .response-col_description pre").first().textContent();
  return { status: ((await status.textContent()) || "").trim(), body: text || "" };
}

run("swagger_authorize.cjs", executablePath, async (browser, result) => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
  watch(page, result);
  result.authorization = null; // the header of the POST /v1/departments request
  page.on("request", (req) => {
    if (req.method() === "POST" && req.url().endsWith("/api/departments/v1/departments")) {
      result.authorization = req.headers()["authorization"] || null;
    }
  });
  await page.goto(`${base}/docs/`, { waitUntil: "load", timeout: 20000 });
  const select = page.locator(".topbar .download-url-wrapper select");
  await select.waitFor(WAIT);

  await select.selectOption({ label: "users" });
  const login = operation(page, "post", "/v1/auth/login");
  await login.waitFor(WAIT);
  const signedIn = await execute(login, { email, password });
  result.login_status = signedIn.status;
  const token = JSON.parse(signedIn.body).data.access_token;
  result.access_token = token;

  await select.selectOption({ label: "departments" });
  const create = operation(page, "post", "/v1/departments");
  await create.waitFor(WAIT);
  await page.locator(".auth-wrapper button.authorize").click();
  const dialog = page.locator(".dialog-ux .modal-ux");
  await dialog.waitFor(WAIT);
  const bearer = dialog.locator(".auth-container").filter({ hasText: "bearer" }).first();
  await bearer.locator("input").first().fill(token);
  await bearer.locator("button.authorize").click();
  // authorized: "Logout" replaces the button
  await bearer.locator("button", { hasText: "Logout" }).waitFor(WAIT);
  await bearer.locator("button.btn-done").click();
  await dialog.waitFor({ state: "detached", timeout: 20000 });

  const created = await execute(create, { name: department, address: "1 Browser Way, Springfield" });
  result.create_status = created.status;
  result.create_body = created.body;
  await create.scrollIntoViewIfNeeded();
  await page.screenshot({ path: screenshot, fullPage: false });
});

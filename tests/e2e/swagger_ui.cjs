// Drive Swagger UI at /docs/ in Debian's chromium through playwright-core (never downloads
// a browser). Usage: node swagger_ui.cjs <base-url> <screenshot.png> <chromium-path>
// NODE_PATH must point at tools/swagger/node_modules. Prints one JSON object on stdout.
"use strict";
const { run, watch } = require("./browser.cjs");

const [base, screenshot, executablePath] = process.argv.slice(2);

run("swagger_ui.cjs", executablePath, async (browser, result) => {
  Object.assign(result, { services: [], operations: [], status: null });
  {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    watch(page, result);
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

    // "Try it out" on a create starts from the document's first request example
    const create = page
      .locator(".opblock.opblock-post")
      .filter({ has: page.locator('.opblock-summary-path[data-path="/v1/departments"]') })
      .first();
    await create.locator(".opblock-summary").click();
    await create.locator("button.try-out__btn").click();
    const body = create.locator("textarea.body-param__text").first();
    await body.waitFor({ timeout: 20000 });
    result.create_body = await body.inputValue();
  }
});

/**
 * The developer portal in Chromium, against the local stack: the whole key story a tenant's developer
 * lives (an operator's one-time link → a key shown once → the API accepts it → the call shows in the
 * overview within the 10 seconds the page promises → revoked → the API refuses it), self-serve sign-up
 * through npm start's dev mailbox, the docs page's try-it form, and every portal page held to the
 * per-page bar (test/browser/harness.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Locator, Page } from "playwright-core";
import {
  ARTIFACTS,
  admin,
  auditPage,
  callApi,
  createPlan,
  createTenant,
  note,
  screenshot,
  theStack,
  uniq,
  withPage,
} from "./harness";

/** The overview's promise: a call shows in its numbers within this long (it refreshes every 5 s). */
const USAGE_VISIBLE_MS = 10_000;

/** A fresh one-time portal link for `tenantId`, as the operator's app mints it. */
async function portalLink(tenantId: string): Promise<string> {
  const body = await admin<{ url: string }>("POST", `/admin/v1/tenants/${tenantId}/portal-sessions`, {}, 201);
  return body.url;
}

/** Opens a fresh link and presses its one button: the page is then on the signed-in overview. */
async function signIn(page: Page, tenantId: string): Promise<void> {
  await page.goto(await portalLink(tenantId));
  await page.getByRole("button", { name: "Continue to the portal" }).click();
  await page.waitForURL(`${theStack().base}/portal`);
}

/** The request count the overview shows for route `/v1/` (0 while the route has no row). */
async function shownRequests(page: Page): Promise<number> {
  const cell = page.locator('#endpoints tr[data-route="/v1/"] [data-requests]');
  if ((await cell.count()) === 0) return 0;
  const text = (await cell.first().textContent()) ?? "";
  return Number(text.replace(/[^0-9]/g, "") || "0");
}

/** Submits the form `button` is in; resolves once the page it leads to (after any redirect) has loaded. */
async function submit(page: Page, button: Locator): Promise<void> {
  const loaded = page.waitForEvent("load");
  await button.click();
  await loaded;
}

describe("portal: a developer's key, from link to revocation", { timeout: 90_000 }, () => {
  it("signs in with an operator's link; a new key is shown once, works, shows in the overview within 10 s, and is refused once revoked", async () => {
    const plan = await createPlan({ name: `growth-${uniq()}` });
    const tenant = await createTenant(plan.id, "Acme Robotics");
    await withPage("portal-flow", async ({ page, dialogs }) => {
      const link = await portalLink(tenant.tenantId);
      await page.goto(link);
      await screenshot(page, "flow-portal-enter");
      await page.getByRole("button", { name: "Continue to the portal" }).click();
      await page.waitForURL(`${theStack().base}/portal`);

      await page.goto("/portal/keys");
      const keyName = `browser key ${uniq()}`;
      await page.locator("#create-key [name=name]").fill(keyName);
      await page.locator("#create-key select[name=env]").selectOption("live");
      await submit(page, page.locator("#create-key").getByRole("button", { name: "Create key" }));
      const key = ((await page.locator("code#new-key").textContent()) ?? "").trim();
      assert.match(key, /^gw_live_/, "the new key is shown");
      await page.locator('[data-copy="new-key"]').click();
      assert.equal(
        await page.evaluate(() => navigator.clipboard.readText()),
        key,
        "the copy button copies it",
      );
      await screenshot(page, "flow-portal-key-created");

      await page.goto("/portal/keys");
      assert.equal(await page.locator("code#new-key").count(), 0, "the key is not shown again");
      assert.ok(!(await page.content()).includes(key), "the plaintext is nowhere on the keys page");
      assert.equal(
        await page.locator("tr[data-key-id]", { hasText: keyName }).count(),
        1,
        "the key is listed",
      );

      await page.goto("/portal");
      const before = await shownRequests(page);
      const calls = 3;
      for (let i = 0; i < calls; i++)
        assert.equal((await callApi(key)).status, 200, "the API accepts the new key");
      const sent = Date.now();
      // No reload: the page's own refresh has to bring the calls in.
      while ((await shownRequests(page)) < before + calls) {
        assert.ok(
          Date.now() - sent < USAGE_VISIBLE_MS,
          `the overview still shows ${await shownRequests(page)} requests for /v1/ ${USAGE_VISIBLE_MS / 1000} s after ${calls} calls (was ${before})`,
        );
        await page.waitForTimeout(250);
      }
      note(
        `portal overview showed the ${calls} calls ${((Date.now() - sent) / 1000).toFixed(1)} s after the last one`,
      );
      await page.locator("#traffic-chart").waitFor({ state: "visible" });
      await page.locator("#windows").waitFor({ state: "visible" });
      await screenshot(page, "flow-portal-overview", "portal-overview");

      await page.goto("/portal/keys");
      const row = page.locator("tr[data-key-id]", { hasText: keyName });
      await submit(page, row.getByRole("button", { name: "Revoke" }));
      assert.equal(dialogs.length, 1, "revoking asks first");
      assert.equal((await callApi(key)).status, 401, "the API refuses the revoked key on the very next call");
      await screenshot(page, "flow-portal-key-revoked");
    });
  });
});

describe("portal: self-serve sign-up", { timeout: 60_000 }, () => {
  it("an address gets a link by mail; the link makes a tenant and shows its test key once, which reaches the sandbox", async () => {
    const email = `dev-${uniq()}@example.com`;
    await withPage("portal-signup-flow", async ({ page }) => {
      await page.goto("/portal/signup");
      await page.locator("#email").fill(email);
      await submit(page, page.getByRole("button", { name: "Email me a link" }));
      await page.locator("#check-inbox").waitFor();
      // npm start's dev mailbox prints every link it receives.
      const escaped = email.replace(/[.+]/g, "\\$&");
      const [, link] = await theStack().waitForLine(new RegExp(`Mail to ${escaped}: (\\S+)`), 10_000);
      assert.ok(link, "the mail carries a link");
      await page.goto(link);
      await submit(page, page.getByRole("button", { name: "Continue to the portal" }));
      const key = ((await page.locator("code#new-key").textContent()) ?? "").trim();
      assert.match(key, /^gw_test_/, "the new tenant's test key is shown");
      await screenshot(page, "flow-portal-signup-welcome");
      assert.equal((await callApi(key)).status, 200, "the test key reaches the sandbox");
      await page.getByRole("link", { name: "Continue to the portal" }).click();
      await page.waitForURL(`${theStack().base}/portal`);
      assert.ok(!(await page.content()).includes(key), "the key is not shown again");
    });
  });
});

describe("portal: docs try-it", { timeout: 60_000 }, () => {
  it("sends GET /gateway/v1/usage with the test key typed into its try-it form and shows the answer", async () => {
    const plan = await createPlan();
    const tenant = await createTenant(plan.id);
    // Try it sends test keys only (the sandbox is the point; never billed).
    const testKey = await admin<{ key: string }>(
      "POST",
      `/admin/v1/tenants/${tenant.tenantId}/keys`,
      { env: "test", name: "docs" },
      201,
    );
    await withPage("portal-docs-try-it", async ({ page }) => {
      await signIn(page, tenant.tenantId);
      await page.goto("/portal/docs");
      assert.ok((await page.locator("section.op").count()) > 1, "the docs list operations");
      const op = page.locator("section.op#op-get-gateway-v1-usage");
      const form = op.locator("form.try-it");
      await form.locator("[name=key]").fill(testKey.key);
      await form.locator("button[type=submit]").click();
      const output = form.locator("pre.try-output");
      await output.filter({ hasText: /HTTP \d{3}/ }).waitFor();
      const text = (await output.textContent()) ?? "";
      assert.match(text, /HTTP 200/, "the answer's status is shown");
      assert.match(text, /"daily"|daily/, "with the tenant's usage windows");
      await op.screenshot({ path: `${ARTIFACTS}flow-portal-docs-try-it.png` });
    });
  });
});

describe("portal pages", { timeout: 60_000 }, () => {
  it("the sign-in link's page", async () => {
    const { demo } = theStack();
    await withPage("portal-enter", async ({ page }) => {
      const link = new URL(await portalLink(demo.tenantId));
      await auditPage(page, "portal-enter", `${link.pathname}${link.search}`);
      await page.getByRole("button", { name: "Continue to the portal" }).waitFor();
    });
  });

  it("the API reference at /gateway/docs (public, no CDN)", async () => {
    await withPage("gateway-docs", async ({ page }) => {
      await auditPage(page, "gateway-docs", "/gateway/docs");
    });
  });

  it("the sign-up page", async () => {
    await withPage("portal-signup", async ({ page }) => {
      await auditPage(page, "portal-signup", "/portal/signup");
    });
  });

  const pages: Array<[name: string, path: string]> = [
    ["portal-overview", "/portal"],
    ["portal-usage", "/portal/usage"],
    ["portal-keys", "/portal/keys"],
    ["portal-webhooks", "/portal/webhooks"],
    ["portal-billing", "/portal/billing"],
    ["portal-docs", "/portal/docs"],
  ];
  for (const [name, path] of pages) {
    it(path, async () => {
      await withPage(name, async ({ page }) => {
        await signIn(page, theStack().demo.tenantId);
        await auditPage(page, name, path);
      });
    });
  }
});

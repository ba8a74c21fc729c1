/**
 * The operator console in Chromium, against the local stack: sign in with the admin token, open a
 * tenant from the list, change its plan, and see the new limits in that tenant's very next API
 * response headers; and every console page held to the per-page bar (test/browser/harness.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Page } from "playwright-core";
import {
  auditPage,
  callApi,
  createPlan,
  createTenant,
  screenshot,
  theStack,
  uniq,
  withPage,
} from "./harness";

/** Signs in on /console/login with the admin token; the page is then on /console. */
async function signIn(page: Page): Promise<void> {
  await page.goto("/console/login");
  await page.locator("#token").fill(theStack().adminToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${theStack().base}/console`);
}

describe("console: an operator changes a tenant's plan", { timeout: 60_000 }, () => {
  it("the tenant's next response carries the new plan's name and daily limit", async () => {
    const small = await createPlan({ name: `starter-${uniq()}`, dailyQuota: 1_000 });
    const large = await createPlan({ name: `growth-${uniq()}`, dailyQuota: 5_000 });
    const tenant = await createTenant(small.id, "Globex Logistics");
    const first = await callApi(tenant.key);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-ratelimit-plan"), small.name);
    assert.match(first.headers.get("ratelimit-policy") ?? "", /"daily";q=1000;/);

    await withPage("console-flow", async ({ page }) => {
      await signIn(page);
      await page.locator(`tr[data-tenant-id="${tenant.tenantId}"] a`).first().click();
      await page.waitForURL(`${theStack().base}/console/tenants/${tenant.tenantId}`);
      await page.locator("#plan-form select[name=planId]").selectOption(large.id);
      const loaded = page.waitForEvent("load"); // the page the form's POST leads to, after its redirect
      await page.locator("#plan-form").getByRole("button", { name: "Change plan" }).click();
      await loaded;
      await screenshot(page, "flow-console-tenant", "console-tenant");
    });

    const next = await callApi(tenant.key);
    assert.equal(next.status, 200);
    assert.equal(
      next.headers.get("x-ratelimit-plan"),
      large.name,
      "the very next response names the new plan",
    );
    assert.match(
      next.headers.get("ratelimit-policy") ?? "",
      /"daily";q=5000;/,
      "and carries its daily limit",
    );
  });
});

describe("console pages", { timeout: 60_000 }, () => {
  it("/console/login", async () => {
    await withPage("console-login", async ({ page }) => {
      await auditPage(page, "console-login", "/console/login");
    });
  });

  const pages: Array<[name: string, path: () => string]> = [
    ["console-tenants", () => "/console"],
    ["console-tenant", () => `/console/tenants/${theStack().demo.tenantId}`],
    ["console-endpoints", () => "/console/endpoints"],
    ["console-reconciliation", () => "/console/reconciliation"],
    ["console-dead-letters", () => "/console/dead-letters"],
  ];
  for (const [name, path] of pages) {
    it(name, async () => {
      await withPage(name, async ({ page }) => {
        await signIn(page);
        await auditPage(page, name, path());
      });
    });
  }
});

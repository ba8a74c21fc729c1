/**
 * Plans have prices, every tenant has a Stripe customer, and every tenant on a metered plan a
 * subscription on its plan version's prices — through the admin API, against the Stripe stand-in,
 * including Stripe down while a tenant is created or moved (the billing sync catches up).
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { lookupKey } from "../../workers/billing/stripe-catalog";
import { syncBillingDue } from "../../workers/billing/subscription-sync";
import worker from "../../workers/index";
import { controlledClock } from "../support/clock";
import { withDb } from "../support/db";
import { admin, bearer, createPlan, expectJson, gateway, uniq } from "../support/gateway";
import { runCron, stripeFailNext } from "../support/metering";
import { standinStripe } from "../support/stripe-standin";

const clock = controlledClock();

const stripe = standinStripe(undefined, { maxNetworkRetries: 0 });

const metered = (baseFee: number) => ({
  model: "metered",
  currency: "usd",
  baseFee,
  includedUnits: 1000,
  tiers: [
    { upTo: 10_000, unitAmount: 2 },
    { upTo: null, unitAmount: 1 },
  ],
});

interface Billing {
  customerId: string | null;
  subscriptionId: string | null;
  planId: string | null;
  pricingVersion: number | null;
  periodEnd: string | null;
  sync: "pending" | "ok" | "failed";
  lastError: string | null;
}
interface TenantOut {
  id: string;
  planId: string;
  billing: Billing;
}

async function createTenant(planId: string, headers: Record<string, string> = {}) {
  const slug = `b-${uniq()}`;
  const res = await gateway("/admin/v1/tenants", {
    method: "POST",
    headers: { ...bearer(env.ADMIN_TOKEN), "content-type": "application/json", ...headers },
    body: JSON.stringify({ slug, name: `Tenant ${slug}`, planId }),
  });
  return expectJson<{ tenant: TenantOut; key: { key: string } }>(res, 201);
}

const readTenant = async (id: string) =>
  expectJson<TenantOut>(await admin("GET", `/admin/v1/tenants/${id}`), 200);

async function pricesOf(planId: string, version: number) {
  const keys = (["base", "usage", "pack"] as const).map((part) => lookupKey(planId, version, part));
  const list = await stripe.prices.list({ lookup_keys: keys, expand: ["data.tiers"] });
  return Object.fromEntries(list.data.map((p) => [p.lookup_key?.split("_").pop(), p]));
}

/** The subscription's price ids, in item order. */
async function itemPrices(subscriptionId: string): Promise<string[]> {
  const sub = await stripe.subscriptions.retrieve(subscriptionId);
  return sub.items.data.map((i) => i.price.id);
}

/** Every Stripe customer and live subscription made for this tenant. */
async function stripeSideOf(tenantId: string) {
  const customers: Stripe.Customer[] = [];
  for await (const c of stripe.customers.list({ limit: 100 }))
    if (c.metadata.gateway_tenant_id === tenantId) customers.push(c);
  const subscriptions: Stripe.Subscription[] = [];
  for (const c of customers)
    for await (const s of stripe.subscriptions.list({ customer: c.id, limit: 100 })) subscriptions.push(s);
  return { customers, subscriptions };
}

/** A cron run with a clock past every backoff (and `at`, for a change due at a period end). */
const cron = (at = Date.now() + 3_600_000) => syncBillingDue(env, at);

describe("plans have prices", () => {
  it("defaults to free and makes nothing in Stripe; a metered plan gets its product and lookup-keyed prices", async () => {
    const free = await createPlan();
    expect(free).toMatchObject({ pricing: { model: "free" }, pricingVersion: 1 });
    expect(await pricesOf(free.id, 1)).toEqual({});

    const plan = await createPlan({ pricing: metered(4900) });
    expect(await expectJson(await admin("GET", `/admin/v1/plans/${plan.id}`), 200)).toMatchObject({
      pricing: metered(4900),
      pricingVersion: 1,
    });
    expect((await stripe.products.retrieve(`gw_${plan.id}`)).metadata.gateway_plan_id).toBe(plan.id);
    const { base, usage } = await pricesOf(plan.id, 1);
    expect(base).toMatchObject({ unit_amount: 4900, currency: "usd", recurring: { usage_type: "licensed" } });
    expect(usage).toMatchObject({
      billing_scheme: "tiered",
      tiers_mode: "graduated",
      recurring: { interval: "month", usage_type: "metered", meter: expect.stringMatching(/^mtr_/) },
    });
    expect(usage?.tiers?.map((t: Stripe.Price.Tier) => [t.up_to, t.unit_amount, t.flat_amount])).toEqual([
      [1000, 0, 0],
      [11_000, 2, 0],
      [null, 1, 0],
    ]);
  });

  it("documents pricing, applyPricing and the tenant's billing in the OpenAPI document", async () => {
    const doc = await expectJson<{ components: { schemas: Record<string, { properties?: object }> } }>(
      await gateway("/gateway/openapi.json"),
      200,
    );
    const schemas = doc.components.schemas;
    expect(Object.keys(schemas.PlanInput?.properties ?? {})).toContain("pricing");
    expect(Object.keys(schemas.PlanPatch?.properties ?? {})).toEqual(
      expect.arrayContaining(["pricing", "applyPricing"]),
    );
    expect(Object.keys(schemas.Plan?.properties ?? {})).toEqual(
      expect.arrayContaining(["pricing", "pricingVersion"]),
    );
    expect(Object.keys(schemas.TenantBilling?.properties ?? {})).toEqual(
      expect.arrayContaining(["customerId", "subscriptionId", "sync", "lastError"]),
    );
  });

  it("makes a one-time credit-pack price for a prepaid plan, and refuses a pricing off the schema", async () => {
    const plan = await createPlan({
      pricing: { model: "prepaid", currency: "eur", creditPack: { units: 10_000, amount: 1500 } },
    });
    const { pack } = await pricesOf(plan.id, 1);
    expect(pack).toMatchObject({ type: "one_time", unit_amount: 1500, currency: "eur", recurring: null });
    const bad = await admin("POST", "/admin/v1/plans", {
      name: `p-${uniq()}`,
      burstCapacity: 1,
      refillTokens: 1,
      refillPeriodSeconds: 1,
      pricing: { ...metered(0), tiers: [{ upTo: 10, unitAmount: 1 }] },
    });
    expect(bad.status).toBe(400);
  });
});

describe("every tenant on a paid plan has a subscription", () => {
  it("creates the customer and a subscription on the base-fee and usage prices with the tenant", async () => {
    const plan = await createPlan({ pricing: metered(2500) });
    const { tenant } = await createTenant(plan.id);
    expect(tenant.billing).toMatchObject({ sync: "ok", lastError: null, planId: plan.id, pricingVersion: 1 });
    expect(tenant.billing.customerId).toMatch(/^cus_/);
    const { base, usage } = await pricesOf(plan.id, 1);
    expect(await itemPrices(tenant.billing.subscriptionId as string)).toEqual([base?.id, usage?.id]);
    expect(Date.parse(tenant.billing.periodEnd as string)).toBeGreaterThan(Date.now() + 27 * 86_400_000);
    expect(await readTenant(tenant.id)).toMatchObject({ billing: tenant.billing });
  });

  it("gives a free or prepaid tenant a customer and no subscription", async () => {
    for (const pricing of [
      { model: "free" },
      { model: "prepaid", currency: "usd", creditPack: { units: 100, amount: 500 } },
    ]) {
      const { tenant } = await createTenant((await createPlan({ pricing })).id);
      expect(tenant.billing).toMatchObject({ sync: "ok", subscriptionId: null });
      expect(tenant.billing.customerId).toMatch(/^cus_/);
    }
  });

  it("creates the tenant while Stripe is down, shows the sync pending, and the cron catches up once", async () => {
    const plan = await createPlan({ pricing: metered(1000) });
    await stripeFailNext(1, 503);
    const { tenant } = await createTenant(plan.id);
    expect(tenant.billing).toMatchObject({ sync: "pending", customerId: null, subscriptionId: null });
    expect(tenant.billing.lastError).toMatch(/StripeAPIError/);

    await cron();
    const caught = await readTenant(tenant.id);
    expect(caught.billing).toMatchObject({ sync: "ok", lastError: null, pricingVersion: 1 });
    await cron();
    const side = await stripeSideOf(tenant.id);
    expect(side.customers.map((c) => c.id)).toEqual([caught.billing.customerId]);
    expect(side.subscriptions.map((s) => s.id)).toEqual([caught.billing.subscriptionId]);
  });

  it("is caught up by the Worker's cron (the scheduled handler) once the backoff has passed", async () => {
    const plan = await createPlan({ pricing: metered(1000) });
    await stripeFailNext(1, 503);
    const { tenant } = await createTenant(plan.id);
    expect(tenant.billing.sync).toBe("pending");
    clock.advance(2_100); // the first retry is due 2 s after the failed attempt
    await runCron();
    expect((await readTenant(tenant.id)).billing).toMatchObject({ sync: "ok", lastError: null });
  });

  it("creates the tenant without STRIPE_SECRET_KEY, says why its billing is pending, and catches up once Stripe is configured", async () => {
    const plan = await createPlan({ pricing: metered(1000) });
    const { STRIPE_SECRET_KEY: _unset, ...noStripe } = env;
    const slug = `b-${uniq()}`;
    const ctx = createExecutionContext();
    const res = await worker.fetch(
      new Request("https://gateway.test/admin/v1/tenants", {
        method: "POST",
        headers: { ...bearer(env.ADMIN_TOKEN), "content-type": "application/json" },
        body: JSON.stringify({ slug, name: slug, planId: plan.id }),
      }),
      noStripe as typeof env,
      ctx,
    );
    const body = await res.text();
    await waitOnExecutionContext(ctx);
    expect(res.status, body).toBe(201);
    const { tenant } = JSON.parse(body) as { tenant: TenantOut };
    expect(tenant.billing).toMatchObject({ sync: "pending", customerId: null });
    expect(tenant.billing.lastError).toMatch(/STRIPE_SECRET_KEY/);
    await cron();
    expect((await readTenant(tenant.id)).billing).toMatchObject({ sync: "ok", lastError: null });
  });

  it("never makes a second customer or subscription for a retried create, or a sync that lost Stripe's answer", async () => {
    const plan = await createPlan({ pricing: metered(1000) });
    const idem = { "idempotency-key": uniq() };
    const first = await createTenant(plan.id, idem);
    const slugBody = first.tenant as TenantOut & { slug: string };
    const retry = await gateway("/admin/v1/tenants", {
      method: "POST",
      headers: { ...bearer(env.ADMIN_TOKEN), "content-type": "application/json", ...idem },
      body: JSON.stringify({ slug: slugBody.slug, name: `Tenant ${slugBody.slug}`, planId: plan.id }),
    });
    expect(retry.headers.get("idempotent-replayed")).toBe("true");
    // As if a sync had made the subscription and died before writing it down: a new sync row finds it.
    await withDb(async (db) => {
      await db.execute(sql`UPDATE tenants SET stripe_subscription_id = NULL WHERE id = ${first.tenant.id}`);
      await db.execute(sql`INSERT INTO billing_sync (id, tenant_id, plan_id, pricing_version, prorate)
        VALUES (${`bsync_${uniq()}`}, ${first.tenant.id}, ${plan.id}, 1, true)`);
    });
    await cron();
    expect((await readTenant(first.tenant.id)).billing.subscriptionId).toBe(
      first.tenant.billing.subscriptionId,
    );
    const side = await stripeSideOf(first.tenant.id);
    expect(side.customers).toHaveLength(1);
    expect(side.subscriptions.map((s) => s.id)).toEqual([first.tenant.billing.subscriptionId]);
  });
});

describe("plan changes", () => {
  it("moves the subscription with proration and reaches the tenant object in the same request", async () => {
    const from = await createPlan({ pricing: metered(3000) });
    const to = await createPlan({ pricing: metered(9000) });
    const { tenant, key } = await createTenant(from.id);
    const moved = await expectJson<TenantOut>(
      await admin("PATCH", `/admin/v1/tenants/${tenant.id}`, { planId: to.id }),
      200,
    );
    expect(moved.billing).toMatchObject({
      sync: "ok",
      planId: to.id,
      subscriptionId: tenant.billing.subscriptionId,
    });
    const { base, usage } = await pricesOf(to.id, 1);
    expect((await itemPrices(tenant.billing.subscriptionId as string)).sort()).toEqual(
      [base?.id, usage?.id].sort(),
    );
    const prorations = await stripe.invoiceItems.list({ customer: tenant.billing.customerId as string });
    const amounts = prorations.data.map((ii) => ii.amount);
    expect(amounts.some((a) => a < 0 && a >= -3000)).toBe(true); // unused time on the old base fee
    expect(amounts.some((a) => a > 0 && a <= 9000)).toBe(true); // remaining time on the new one
    const next = await gateway(`/v1/b/${uniq()}`, { headers: bearer(key.key) });
    expect(next.headers.get("x-ratelimit-plan")).toBe(to.name);
  });

  it("moves the tenant while Stripe is down; the subscription follows from the cron", async () => {
    const from = await createPlan({ pricing: metered(3000) });
    const to = await createPlan({ pricing: metered(5000) });
    const { tenant, key } = await createTenant(from.id);
    await stripeFailNext(1, 503);
    const moved = await expectJson<TenantOut>(
      await admin("PATCH", `/admin/v1/tenants/${tenant.id}`, { planId: to.id }),
      200,
    );
    expect(moved).toMatchObject({ planId: to.id, billing: { sync: "pending", planId: from.id } });
    expect(moved.billing.lastError).toMatch(/StripeAPIError/);
    const next = await gateway(`/v1/b/${uniq()}`, { headers: bearer(key.key) });
    expect(next.headers.get("x-ratelimit-plan")).toBe(to.name);

    await cron();
    expect((await readTenant(tenant.id)).billing).toMatchObject({
      sync: "ok",
      planId: to.id,
      lastError: null,
    });
    const { base, usage } = await pricesOf(to.id, 1);
    expect((await itemPrices(tenant.billing.subscriptionId as string)).sort()).toEqual(
      [base?.id, usage?.id].sort(),
    );
  });

  it("marks the sync failed, with Stripe's reason, when Stripe refuses the move (a customer bills in one currency)", async () => {
    const { tenant, key } = await createTenant((await createPlan({ pricing: metered(1000) })).id);
    const eur = await createPlan({ pricing: { ...metered(1000), currency: "eur" } });
    const moved = await expectJson<TenantOut>(
      await admin("PATCH", `/admin/v1/tenants/${tenant.id}`, { planId: eur.id }),
      200,
    );
    expect(moved).toMatchObject({
      planId: eur.id,
      billing: { sync: "failed", planId: tenant.billing.planId },
    });
    expect(moved.billing.lastError).toMatch(/cannot combine currencies/);
    const next = await gateway(`/v1/b/${uniq()}`, { headers: bearer(key.key) });
    expect(next.headers.get("x-ratelimit-plan")).toBe(eur.name);
    await cron(); // a refusal is not retried
    expect((await readTenant(tenant.id)).billing.sync).toBe("failed");
  });

  it("never runs two syncs of one tenant at once: a change while one runs waits, then the cron applies the latest", async () => {
    const { tenant } = await createTenant((await createPlan({ pricing: metered(1000) })).id);
    const to = await createPlan({ pricing: metered(2000) });
    // As if another sync of this tenant (say, the cron's) were talking to Stripe right now.
    await withDb((db) =>
      db.execute(
        sql`UPDATE tenants SET billing_locked_until = now() + interval '1 minute' WHERE id = ${tenant.id}`,
      ),
    );
    const moved = await expectJson<TenantOut>(
      await admin("PATCH", `/admin/v1/tenants/${tenant.id}`, { planId: to.id }),
      200,
    );
    expect(moved.billing).toMatchObject({ sync: "pending", planId: tenant.billing.planId });
    expect(moved.billing.lastError).toMatch(/another billing sync/);
    await withDb((db) =>
      db.execute(sql`UPDATE tenants SET billing_locked_until = NULL WHERE id = ${tenant.id}`),
    );
    await cron();
    expect((await readTenant(tenant.id)).billing).toMatchObject({ sync: "ok", planId: to.id });
    const { base, usage } = await pricesOf(to.id, 1);
    expect((await itemPrices(tenant.billing.subscriptionId as string)).sort()).toEqual(
      [base?.id, usage?.id].sort(),
    );
  });

  it("cancels the subscription of a tenant moved to a free plan", async () => {
    const { tenant } = await createTenant((await createPlan({ pricing: metered(1000) })).id);
    const free = await createPlan();
    const moved = await expectJson<TenantOut>(
      await admin("PATCH", `/admin/v1/tenants/${tenant.id}`, { planId: free.id }),
      200,
    );
    expect(moved.billing).toMatchObject({
      sync: "ok",
      subscriptionId: null,
      customerId: tenant.billing.customerId,
    });
    expect((await stripe.subscriptions.retrieve(tenant.billing.subscriptionId as string)).status).toBe(
      "canceled",
    );
  });
});

describe("pricing changes make a new version", () => {
  it("moves subscriptions now with proration, or at the period end without", async () => {
    const plan = await createPlan({ pricing: metered(3000) });
    const { tenant } = await createTenant(plan.id);
    const sub = tenant.billing.subscriptionId as string;
    const customer = tenant.billing.customerId as string;

    const same = await expectJson(
      await admin("PATCH", `/admin/v1/plans/${plan.id}`, { pricing: metered(3000) }),
      200,
    );
    expect(same).toMatchObject({ pricingVersion: 1 });

    const now = await expectJson(
      await admin("PATCH", `/admin/v1/plans/${plan.id}`, { pricing: metered(6000), applyPricing: "now" }),
      200,
    );
    expect(now).toMatchObject({ pricingVersion: 2, pricing: metered(6000) });
    const v2 = await pricesOf(plan.id, 2);
    expect(v2.base?.unit_amount).toBe(6000);
    expect(await itemPrices(sub)).toEqual(expect.arrayContaining([v2.base?.id, v2.usage?.id]));
    expect((await readTenant(tenant.id)).billing).toMatchObject({ sync: "ok", pricingVersion: 2 });
    const prorated = (await stripe.invoiceItems.list({ customer })).data.length;
    expect(prorated).toBeGreaterThan(0);

    await expectJson(await admin("PATCH", `/admin/v1/plans/${plan.id}`, { pricing: metered(8000) }), 200);
    const waiting = await readTenant(tenant.id);
    expect(waiting.billing).toMatchObject({ sync: "pending", pricingVersion: 2 });
    await cron(Date.now() + 60_000); // not due yet
    expect((await readTenant(tenant.id)).billing.pricingVersion).toBe(2);

    await cron(Date.parse(waiting.billing.periodEnd as string) + 1000);
    expect((await readTenant(tenant.id)).billing).toMatchObject({ sync: "ok", pricingVersion: 3 });
    const v3 = await pricesOf(plan.id, 3);
    expect(await itemPrices(sub)).toEqual(expect.arrayContaining([v3.base?.id, v3.usage?.id]));
    expect((await stripe.invoiceItems.list({ customer })).data).toHaveLength(prorated);
  });
});

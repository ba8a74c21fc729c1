/**
 * The portal's Billing page (`/portal/billing`), driven as a browser would (WebClient) through the
 * Worker's real entry: the amounts, units and credits are GET /gateway/v1/billing's, written in the
 * currency's own digits; invoices are the tenant's own, a page at a time; a top-up is the tenant
 * API's Checkout Session on the Stripe stand-in, sent back here; dunning and suspension are said.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { invoices, tenants } from "../../schema";
import { writeUsageBatch } from "../../workers/metering/postgres-sink";
import { openDb } from "../../workers/shared/db";
import { controlledClock } from "../support/clock";
import { grant, PREPAID } from "../support/credits";
import { withDb } from "../support/db";
import { bearer, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { STANDIN, standinStripe } from "../support/stripe-standin";
import { csrfOf, portalSession } from "../support/web";

const clock = controlledClock();
const stripe = standinStripe(undefined, { maxNetworkRetries: 0 });

const HOUR = 3_600_000;

/** 29.00 a month with 1,000 units included, then 3 per unit. */
const metered = (currency = "usd", baseFee = 2900) => ({
  entitlements: ["api"],
  pricing: {
    model: "metered",
    currency,
    baseFee,
    includedUnits: 1000,
    tiers: [{ upTo: null, unitAmount: 3 }],
  },
});

interface Billing {
  currency: string | null;
  units: { used: number; included: number | null; includedRemaining: number | null; billable: number };
  amount: { baseFee: number; usage: number; total: number } | null;
  forecast: { units: number | null; amount: { total: number } | null };
  credits: { balance: number; held: number } | null;
}

const billingOf = async (key: string) =>
  expectJson<Billing>(await gateway("/gateway/v1/billing", { headers: bearer(key) }), 200);

/** The text of the element with `id` (no nested tags). */
function textOf(html: string, id: string): string {
  const match = new RegExp(`id="${id}"[^>]*>([^<]*)<`).exec(html);
  if (!match) throw new Error(`no #${id} on the page`);
  return match[1] ?? "";
}

/** Billable usage rows through the real sink (the queue consumer's). */
async function seedUsage(tenantId: string, rows: { ts: number; units: number }[]) {
  const { db, close } = openDb(env);
  try {
    await writeUsageBatch(
      db,
      rows.map((r) => ({
        id: `req_${uniq()}${uniq()}${uniq()}`.slice(0, 30).padEnd(30, "0"),
        tenantId,
        keyId: "key_seed",
        env: "live" as const,
        method: "GET",
        route: "/v1/",
        status: 200,
        billable: true,
        units: r.units,
        bytesIn: 1,
        bytesOut: 1,
        latencyMs: 5,
        ts: new Date(r.ts).toISOString(),
      })),
    );
  } finally {
    await close();
  }
}

/** Invoices as the webhook receiver stores them, `created` seconds after a fixed instant. */
async function seedInvoices(
  tenantId: string,
  rows: { created: number; status?: string; number?: string; hosted?: string | null; total?: number }[],
): Promise<string[]> {
  const base = Date.parse("2027-01-01T00:00:00Z");
  const values = rows.map((r, i) => ({
    id: `in_${uniq()}${i}`,
    tenantId,
    stripeSubscriptionId: "sub_x",
    number: r.number ?? `INV-${i}`,
    status: r.status ?? "paid",
    currency: "usd",
    subtotal: r.total ?? 1000 + i,
    total: r.total ?? 1000 + i,
    amountDue: r.total ?? 1000 + i,
    amountPaid: r.status === "open" ? 0 : (r.total ?? 1000 + i),
    amountRemaining: r.status === "open" ? (r.total ?? 1000 + i) : 0,
    periodStart: new Date(base + r.created * 1000 - 30 * 86_400_000),
    periodEnd: new Date(base + r.created * 1000),
    hostedInvoiceUrl: r.hosted === undefined ? `https://invoice.stripe.test/i/${i}` : r.hosted,
    invoicePdf: `https://invoice.stripe.test/i/${i}/pdf`,
    stripeCreatedAt: new Date(base + r.created * 1000),
  }));
  await withDb((db) => db.insert(invoices).values(values));
  return values.map((v) => v.id);
}

describe("the billing page's statement", () => {
  it("shows the units, the amount so far and the forecast GET /gateway/v1/billing answers, in dollars and cents", async () => {
    const periodStart = Date.parse("2027-03-10T08:30:00Z");
    const periodEnd = Date.parse("2027-04-10T08:30:00Z");
    const now = periodStart + 360 * HOUR;
    clock.set(now - 86_400_000);
    const t = await seedTenant({ plan: metered() });
    await withDb((db) =>
      db
        .update(tenants)
        .set({ billingPeriodEnd: new Date(periodEnd) })
        .where(eq(tenants.id, t.tenantId)),
    );
    // 1,501 units in the period: 1,000 included, 501 × 3 = 15.03 on top of the 29.00 base fee.
    await seedUsage(t.tenantId, [
      { ts: periodStart + HOUR, units: 1000 },
      { ts: periodStart + 2 * HOUR, units: 501 },
    ]);
    clock.set(now);
    const api = await billingOf(t.key);
    expect(api.amount).toEqual({ baseFee: 2900, usage: 1503, total: 4403 });

    const web = await portalSession(t.tenantId);
    const html = await web.page("/portal/billing");
    expect(textOf(html, "units-used")).toBe("1,501");
    expect(textOf(html, "units-included")).toBe("1,000");
    expect(textOf(html, "units-left")).toBe("0");
    expect(textOf(html, "units-billable")).toBe("501");
    expect(textOf(html, "amount-so-far")).toBe("$44.03");
    // The forecast: the API's, to the cent.
    const forecast = api.forecast.amount?.total ?? 0;
    expect(forecast).toBeGreaterThan(4403);
    const dollars = `$${Math.floor(forecast / 100).toLocaleString("en-US")}.${String(forecast % 100).padStart(2, "0")}`;
    expect(textOf(html, "amount-forecast")).toBe(
      `${dollars} (${(api.forecast.units ?? 0).toLocaleString("en-US")} units)`,
    );
    expect(textOf(html, "period")).toBe("2027-03-10 08:30 UTC – 2027-04-10 08:30 UTC");
    expect(html).not.toContain('id="top-up"');
  });

  it("writes a yen amount without decimals", async () => {
    const t = await seedTenant({ plan: metered("jpy", 2900) });
    const api = await billingOf(t.key);
    expect(api).toMatchObject({ currency: "jpy", amount: { total: 2900 } });
    const web = await portalSession(t.tenantId);
    expect(textOf(await web.page("/portal/billing"), "amount-so-far")).toBe("¥2,900");
  });
});

describe("credits and top-up", () => {
  it("shows the credit balance the API shows, and tops up through the API's Checkout Session, back to this page", async () => {
    const t = await seedTenant({ plan: PREPAID });
    await grant(t.tenantId, 250);
    const api = await billingOf(t.key);
    expect(api.credits).toEqual({ balance: 250, held: 0 });
    const web = await portalSession(t.tenantId);
    const html = await web.page("/portal/billing");
    expect(textOf(html, "credit-balance")).toBe("250 units");
    expect(html).toContain("1 pack = 100 units for $5.00");

    const res = await web.post("/portal/billing/top-up", { _csrf: csrfOf(html), packs: "2" });
    expect(res.status).toBe(303);
    const location = new URL(res.headers.get("location") ?? "");
    expect(location.origin).toBe(STANDIN.origin);
    const id = location.pathname.split("/").pop() ?? "";
    const session = await stripe.checkout.sessions.retrieve(id);
    expect(session).toMatchObject({
      mode: "payment",
      client_reference_id: t.tenantId,
      metadata: { tenant_id: t.tenantId, units: "200" },
      amount_total: 1000,
      success_url: "https://gateway.test/portal/billing?topup=success",
      cancel_url: "https://gateway.test/portal/billing?topup=cancel",
    });

    expect(await web.page("/portal/billing?topup=success")).toContain("your payment went through");
    expect(await web.page("/portal/billing?topup=cancel")).toContain("nothing was charged");
    expect(await web.page("/portal/billing?topup=<script>")).not.toContain("notice");
  });

  it("sends the tenant API's checkout back to the portal's billing page by default", async () => {
    const t = await seedTenant({ plan: PREPAID });
    const out = await expectJson<{ id: string }>(
      await gateway("/gateway/v1/credits/checkout", {
        method: "POST",
        headers: { ...bearer(t.key), "content-type": "application/json" },
        body: JSON.stringify({ packs: 1 }),
      }),
      201,
    );
    const session = await stripe.checkout.sessions.retrieve(out.id);
    expect(session.success_url).toBe("https://gateway.test/portal/billing?topup=success");
    expect(session.cancel_url).toBe("https://gateway.test/portal/billing?topup=cancel");
  });

  it("refuses a bad pack count with the page and a notice (400), a plan without credits (409), and a post without CSRF (403)", async () => {
    const t = await seedTenant({ plan: PREPAID });
    const web = await portalSession(t.tenantId);
    const csrf = csrfOf(await web.page("/portal/billing"));
    for (const packs of ["0", "101", "1.5", "-1", "lots", ""]) {
      const res = await web.post("/portal/billing/top-up", { _csrf: csrf, packs });
      expect(res.status, packs).toBe(400);
      expect(await res.text()).toContain("Packs: enter a whole number from 1 to 100.");
    }
    expect((await web.post("/portal/billing/top-up", { packs: "1" })).status).toBe(403);

    const m = await seedTenant({ plan: metered() });
    const mWeb = await portalSession(m.tenantId);
    const mHtml = await mWeb.page("/portal/billing");
    expect(mHtml).not.toContain('id="top-up"');
    const res = await mWeb.post("/portal/billing/top-up", { _csrf: csrfOf(mHtml), packs: "1" });
    expect(res.status).toBe(409);
    expect(await res.text()).toContain("is not prepaid");
  });
});

describe("invoices", () => {
  it("lists the tenant's own invoices newest first, a page at a time, linking only http(s) URLs", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const ids = await seedInvoices(a.tenantId, [
      { created: 10 },
      { created: 20, hosted: "javascript:alert(1)" },
      { created: 30, number: "<img src=x onerror=alert(1)>" },
    ]);
    const bIds = await seedInvoices(b.tenantId, [{ created: 25, number: "THEIRS-1" }]);
    const web = await portalSession(a.tenantId);
    const html = await web.page("/portal/billing");
    const rows = [...html.matchAll(/data-invoice-id="([^"]+)"/g)].map((m) => m[1]);
    expect(rows).toEqual([ids[2], ids[1], ids[0]]);
    expect(html).not.toContain(bIds[0]);
    expect(html).not.toContain("THEIRS-1");
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(html).not.toContain("<img src=x");
    expect(html).not.toContain("javascript:");
    expect(html).toContain('href="https://invoice.stripe.test/i/0"');
    expect(html).toContain('href="https://invoice.stripe.test/i/1/pdf"');
    expect(html).toContain("$10.00");

    const first = await web.page("/portal/billing?limit=2");
    expect([...first.matchAll(/data-invoice-id="([^"]+)"/g)].map((m) => m[1])).toEqual([ids[2], ids[1]]);
    const next = /href="(\/portal\/billing\?[^"]*cursor=[^"]+)"/.exec(first)?.[1];
    expect(next).toBeDefined();
    expect(next).toMatch(/^\/portal\/billing\?limit=2&amp;cursor=/);
    const second = await web.page((next ?? "").replace("&amp;", "&"));
    expect([...second.matchAll(/data-invoice-id="([^"]+)"/g)].map((m) => m[1])).toEqual([ids[0]]);

    // A cursor of another list, or junk: 400, as the API answers.
    expect((await web.get("/portal/billing?cursor=junk")).status).toBe(400);
    expect((await web.get("/portal/billing?limit=0")).status).toBe(400);
  });
});

describe("dunning", () => {
  it("says when a past-due tenant's requests start being refused, with the open invoice's pay link; then that they are", async () => {
    const t = await seedTenant();
    const graceUntil = new Date(Date.now() + HOUR);
    await seedInvoices(t.tenantId, [
      { created: 10 },
      { created: 20, status: "open", total: 4900, hosted: "https://pay.stripe.test/in_open" },
    ]);
    await withDb((db) =>
      db
        .update(tenants)
        .set({ status: "past_due", pastDueSince: new Date(Date.now() - 86_400_000), graceUntil })
        .where(eq(tenants.id, t.tenantId)),
    );
    const web = await portalSession(t.tenantId);
    const html = await web.page("/portal/billing");
    const iso = graceUntil.toISOString();
    expect(html).toContain(
      `your API requests will be refused from ${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`,
    );
    expect(html).toContain("Open invoice INV-1: $49.00 due.");
    expect(html).toMatch(/<a href="https:\/\/pay\.stripe\.test\/in_open"[^>]*>Pay the invoice<\/a>/);

    clock.set(graceUntil.getTime());
    expect(await web.page("/portal/billing")).toContain(
      `your API requests are refused since ${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`,
    );
  });

  it("tells a suspended tenant it is suspended, and hides the top-up", async () => {
    const t = await seedTenant({ plan: PREPAID });
    await withDb((db) => db.update(tenants).set({ status: "suspended" }).where(eq(tenants.id, t.tenantId)));
    const web = await portalSession(t.tenantId);
    const html = await web.page("/portal/billing");
    expect(html).toContain("This account is suspended");
    expect(html).not.toContain('id="top-up"');
    const res = await web.post("/portal/billing/top-up", { _csrf: csrfOf(html), packs: "1" });
    expect(res.status).toBe(403);
  });
});

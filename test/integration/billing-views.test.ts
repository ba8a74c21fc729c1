/**
 * What a tenant will pay: `/gateway/v1/billing` and `/gateway/v1/invoices` with the tenant's own key,
 * and their admin twins — amounts equal to the hand-computed tier sum, the pricing version the
 * subscription still bills by, free and prepaid shapes, invoice pages, tenant isolation, bad input.
 */
import { env } from "cloudflare:workers";
import { eq } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { invoices, tenants } from "../../schema";
import { writeUsageBatch } from "../../workers/metering/postgres-sink";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { openDb } from "../../workers/shared/db";
import { controlledClock } from "../support/clock";
import { grant } from "../support/credits";
import { withDb } from "../support/db";
import { admin, bearer, createKey, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { captureUsage, deliver } from "../support/metering";

const clock = controlledClock();

const HOUR = 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** 29.00 a month with 1,000 units included; then 3 per unit for 4,000 units; then 1 per unit plus 7.00 once. */
const metered = (baseFee = 2900) => ({
  model: "metered",
  currency: "usd",
  baseFee,
  includedUnits: 1000,
  tiers: [
    { upTo: 4000, unitAmount: 3 },
    { upTo: null, unitAmount: 1, flatAmount: 700 },
  ],
});

interface Billing {
  plan: { id: string; name: string; model: string; pricingVersion: number };
  currency: string | null;
  period: { start: string; end: string };
  asOf: string;
  units: { used: number; included: number | null; includedRemaining: number | null; billable: number };
  amount: { baseFee: number; usage: number; total: number } | null;
  forecast: { units: number | null; amount: { baseFee: number; usage: number; total: number } | null };
  credits: { balance: number; held: number } | null;
}

interface InvoicePage {
  data: { id: string; number: string | null; total: number; period: { start: string }; createdAt: string }[];
  next_cursor: string | null;
}

/** Usage rows through the real sink (the queue consumer's), one event per `units` entry at `ts`. */
async function seedUsage(
  tenantId: string,
  rows: { ts: number; units: number; over?: Partial<UsageEvent> }[],
) {
  const { db, close } = openDb(env);
  try {
    await writeUsageBatch(
      db,
      rows.map((r) => ({
        id: `req_${uniq()}${uniq()}${uniq()}`.slice(0, 30).padEnd(30, "0"),
        tenantId,
        keyId: "key_seed",
        env: "live",
        method: "GET",
        route: "/v1/",
        status: 200,
        billable: true,
        units: r.units,
        bytesIn: 1,
        bytesOut: 1,
        latencyMs: 5,
        ts: iso(r.ts),
        ...r.over,
      })),
    );
  } finally {
    await close();
  }
}

const billingOf = async (key: string) =>
  expectJson<Billing>(await gateway("/gateway/v1/billing", { headers: bearer(key) }), 200);

describe("GET /gateway/v1/billing", () => {
  it("shows a metered tenant's units, the amount so far as the tier sum, and a linear forecast, by the pricing version its subscription bills", async () => {
    const periodStart = Date.parse("2027-03-10T08:30:00Z");
    const periodEnd = Date.parse("2027-04-10T08:30:00Z"); // 31 days: 744 hours
    const now = periodStart + 360 * HOUR; // 2027-03-25T08:30:00Z
    clock.set(now - 86_400_000);
    const t = await seedTenant({ plan: { entitlements: ["api", "reports"], pricing: metered() } });
    const other = await seedTenant({ plan: { pricing: metered() } });
    // The period Stripe reported at the last sync: fixed here, so nothing depends on today's date.
    await withDb((db) =>
      db
        .update(tenants)
        .set({ billingPeriodEnd: new Date(periodEnd) })
        .where(eq(tenants.id, t.tenantId)),
    );
    const before = await expectJson<{ billing: { subscriptionId: string | null; pricingVersion: number } }>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}`),
      200,
    );
    expect(before.billing).toMatchObject({
      subscriptionId: expect.stringMatching(/^sub_/),
      pricingVersion: 1,
    });
    // A new price from the period's end: the subscription bills version 1 until then.
    clock.advance(1000);
    await expectJson(await admin("PATCH", `/admin/v1/plans/${t.plan.id}`, { pricing: metered(9900) }), 200);

    await seedUsage(t.tenantId, [
      // In the period: 1,200 requests of 5 units, hours from the first whole hour of the period on.
      ...Array.from({ length: 1200 }, (_, i) => ({ ts: periodStart + HOUR + i * 60_000, units: 5 })),
      // Stamped with an hour before the period's start (08:00 < 08:30): Stripe bills it in the last period.
      { ts: periodStart + 10 * 60_000, units: 1000 },
      { ts: periodStart - 5 * 86_400_000, units: 1000 },
      // Not billable: a test key's request, an origin 5xx.
      { ts: periodStart + 2 * HOUR, units: 50, over: { env: "test", billable: false } },
      { ts: periodStart + 2 * HOUR, units: 70, over: { status: 502, billable: false } },
    ]);
    await seedUsage(other.tenantId, [{ ts: periodStart + 3 * HOUR, units: 4444 }]);

    // And real traffic now, through the proxy and the queue consumer: 3 × /v1/reports/ (cost 5).
    clock.set(now);
    const events = await captureUsage(
      async () => {
        for (let i = 0; i < 3; i++) {
          const res = await gateway(`/v1/reports/${uniq()}`, { headers: bearer(t.key) });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
        }
      },
      3,
      t.tenantId,
    );
    await deliver(events);

    const view = await billingOf(t.key);
    // 6,000 + 15 units. Tiers: 1..1,000 free; 1,001..5,000 at 3 = 12,000; 5,001..6,015 at 1 = 1,015, plus 700.
    expect(view).toEqual({
      plan: { id: t.plan.id, name: t.plan.name, model: "metered", pricingVersion: 1 },
      currency: "usd",
      period: { start: iso(periodStart), end: iso(periodEnd) },
      asOf: iso(now),
      units: { used: 6015, included: 1000, includedRemaining: 0, billable: 5015 },
      amount: { baseFee: 2900, usage: 13_715, total: 16_615 },
      // 6,015 × 744 / 360 = 12,431 units: 12,000 + (7,431 + 700).
      forecast: { units: 12_431, amount: { baseFee: 2900, usage: 20_131, total: 23_031 } },
      credits: null,
    });
    expect(await expectJson(await admin("GET", `/admin/v1/tenants/${t.tenantId}/billing`), 200)).toEqual(
      view,
    );

    // Past the period's end the next period begins, empty so far (the new version waits for the sync).
    clock.set(periodEnd);
    const next = await billingOf(t.key);
    expect(next.period).toEqual({ start: iso(periodEnd), end: "2027-05-10T08:30:00.000Z" });
    expect(next.units.used).toBe(0);
    expect(next.amount).toEqual({ baseFee: 2900, usage: 0, total: 2900 });
  });

  it("shows a free tenant's units at zero cost over the calendar month, and a prepaid tenant's units with no amount", async () => {
    const now = Date.parse("2027-06-16T00:00:00Z"); // half of June
    clock.set(now - 1000);
    const free = await seedTenant();
    const prepaid = await seedTenant({
      plan: { pricing: { model: "prepaid", currency: "eur", creditPack: { units: 1000, amount: 500 } } },
    });
    for (const t of [free, prepaid])
      await seedUsage(t.tenantId, [
        { ts: Date.parse("2027-06-01T00:00:00Z"), units: 40 },
        { ts: Date.parse("2027-05-31T23:59:59Z"), units: 1000 },
      ]);
    await grant(prepaid.tenantId, 250);
    clock.set(now);
    const june = { start: "2027-06-01T00:00:00.000Z", end: "2027-07-01T00:00:00.000Z" };
    const zero = { baseFee: 0, usage: 0, total: 0 };
    expect(await billingOf(free.key)).toMatchObject({
      plan: { model: "free", pricingVersion: 1 },
      currency: null,
      period: june,
      units: { used: 40, included: null, includedRemaining: null, billable: 0 },
      amount: zero,
      forecast: { units: 80, amount: zero },
      credits: null,
    });
    expect(await billingOf(prepaid.key)).toMatchObject({
      plan: { model: "prepaid" },
      currency: "eur",
      period: june,
      units: { used: 40, included: null, includedRemaining: null, billable: 40 },
      amount: null,
      forecast: { units: 80, amount: null },
      credits: { balance: 250, held: 0 },
    });
  });

  it("answers 404 for an unknown tenant on the admin side, and 401 without a key", async () => {
    for (const path of ["billing", "invoices"]) {
      const res = await admin("GET", `/admin/v1/tenants/ten_${uniq()}/${path}`);
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ code: "not_found" });
      expect((await gateway(`/gateway/v1/${path}`)).status).toBe(401);
    }
  });
});

describe("GET /gateway/v1/invoices", () => {
  /** Invoices as the webhook receiver stores them; `created` in seconds after a fixed instant. */
  async function seedInvoices(tenantId: string, created: number[]): Promise<string[]> {
    const base = Date.parse("2027-01-01T00:00:00Z");
    const rows = created.map((s, i) => ({
      id: `in_${uniq()}${i}`,
      tenantId,
      stripeSubscriptionId: "sub_x",
      number: `INV-${i}`,
      status: i === 0 ? "open" : "paid",
      currency: "usd",
      subtotal: 1000 + i,
      total: 1000 + i,
      amountDue: 1000 + i,
      amountPaid: i === 0 ? 0 : 1000 + i,
      amountRemaining: i === 0 ? 1000 : 0,
      periodStart: new Date(base + s * 1000 - 30 * 86_400_000),
      periodEnd: new Date(base + s * 1000),
      hostedInvoiceUrl: `https://invoice.stripe.test/i/${i}`,
      invoicePdf: `https://invoice.stripe.test/i/${i}/pdf`,
      stripeCreatedAt: new Date(base + s * 1000),
    }));
    await withDb((db) => db.insert(invoices).values(rows));
    return rows.map((r) => r.id);
  }

  it("lists the caller's invoices newest first, a page at a time, to a member key too — never another tenant's", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    // Two invoices created in the same second: ordered by id after the time, neither lost nor repeated.
    const ids = await seedInvoices(a.tenantId, [10, 20, 30, 30, 40]);
    const bIds = await seedInvoices(b.tenantId, [25, 35]);
    const member = await createKey(a.tenantId, { role: "member" });

    const seen: InvoicePage["data"] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `?limit=2&cursor=${cursor}` : "?limit=2";
      const page: InvoicePage = await expectJson<InvoicePage>(
        await gateway(`/gateway/v1/invoices${q}`, { headers: bearer(member.key) }),
        200,
      );
      seen.push(...page.data);
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    const tied = [ids[2], ids[3]].sort().reverse();
    expect(seen.map((i) => i.id)).toEqual([ids[4], ...tied, ids[1], ids[0]]);
    expect(seen.filter((i) => bIds.includes(i.id))).toEqual([]);

    const [newest] = (
      await expectJson<InvoicePage>(
        await gateway("/gateway/v1/invoices?limit=1", { headers: bearer(a.key) }),
        200,
      )
    ).data;
    expect(newest).toEqual({
      id: ids[4],
      number: "INV-4",
      status: "paid",
      currency: "usd",
      amountDue: 1004,
      amountPaid: 1004,
      total: 1004,
      period: { start: "2026-12-02T00:00:40.000Z", end: "2027-01-01T00:00:40.000Z" },
      hostedInvoiceUrl: "https://invoice.stripe.test/i/4",
      invoicePdf: "https://invoice.stripe.test/i/4/pdf",
      createdAt: "2027-01-01T00:00:40.000Z",
    });

    const theirs = await expectJson<InvoicePage>(
      await gateway("/gateway/v1/invoices", { headers: bearer(b.key) }),
      200,
    );
    expect(theirs.data.map((i) => i.id)).toEqual([bIds[1], bIds[0]]);
    const viaAdmin = await expectJson<InvoicePage>(
      await admin("GET", `/admin/v1/tenants/${b.tenantId}/invoices`),
      200,
    );
    expect(viaAdmin).toEqual(theirs);
  });

  it("refuses bad query parameters with 400 problem+json: limit out of range, a cursor it never gave", async () => {
    const t = await seedTenant();
    await createKey(t.tenantId);
    // A cursor of another list (the keys list) names that list: refused here.
    const keysCursor = (
      await expectJson<{ next_cursor: string }>(
        await gateway("/gateway/v1/keys?limit=1", { headers: bearer(t.key) }),
        200,
      )
    ).next_cursor;
    expect(keysCursor).toEqual(expect.any(String));
    for (const q of ["limit=0", "limit=201", "limit=abc", "cursor=garbage", `cursor=${keysCursor}`]) {
      const res = await gateway(`/gateway/v1/invoices?${q}`, { headers: bearer(t.key) });
      expect(res.status, q).toBe(400);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
      expect(await res.json()).toMatchObject({ code: "validation_failed", status: 400 });
    }
    const adminRes = await admin("GET", `/admin/v1/tenants/${t.tenantId}/invoices?limit=-1`);
    expect(adminRes.status).toBe(400);
  });

  it("is in the OpenAPI document, with the billing view, for tenants and admins", async () => {
    const doc = await expectJson<{ paths: Record<string, { get?: unknown }> }>(
      await gateway("/gateway/openapi.json"),
      200,
    );
    for (const path of [
      "/gateway/v1/billing",
      "/gateway/v1/invoices",
      "/admin/v1/tenants/{id}/billing",
      "/admin/v1/tenants/{id}/invoices",
    ])
      expect(doc.paths[path]?.get, path).toBeDefined();
  });
});

/**
 * README "Prepaid credits": a prepaid tenant's balance lives in its tenant object and is charged in
 * the same atomic admission as the limits — exact under 200 concurrent requests, 402
 * `credits_exhausted` when a request doesn't fit, given back when a request is not billable, never
 * touched by test keys or replays; grants are idempotent; the Postgres ledger settles usage per
 * tenant-hour once and reconciles with the object (and shows a difference when a row is tampered with).
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it, vi } from "vitest";
import type { AdmitInput, TenantLimiter } from "../../durable-objects/tenant";
import { grantCheckout } from "../../workers/billing/credits/checkout-completed";
import { creditsCron, settleCreditUsage } from "../../workers/billing/credits/settlement";
import { openDb } from "../../workers/shared/db";
import { grantCredits } from "../../workers/shared/tenant-client";
import { controlledClock } from "../support/clock";
import { admin, bearer, createKey, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { captureUsage, deliver, reconciliation, runCron } from "../support/metering";

const clock = controlledClock();

const PREPAID = {
  entitlements: ["api", "reports"],
  pricing: { model: "prepaid", currency: "usd", creditPack: { units: 100, amount: 500 } },
};

/** Roomy limits: these tests are about credits, not windows. */
const PREPAID_LIMITS = {
  burstCapacity: 1000,
  refillTokens: 1000,
  refillPeriodSeconds: 1,
  dailyQuota: null,
  monthlyQuota: null,
};

interface Credits {
  balance: number;
  held: number;
  ledger: {
    data: { id: string; kind: string; units: number; reason: string | null; actor: string | null }[];
  };
}

const prepaidTenant = () => seedTenant({ plan: PREPAID });

async function grant(tenantId: string, units: number) {
  return expectJson<{ entry: { id: string }; balance: number }>(
    await admin("POST", `/admin/v1/tenants/${tenantId}/credits`, {
      units,
      reason: "test top-up",
      actor: "ops@test",
    }),
    201,
  );
}

const credits = async (tenantId: string) =>
  expectJson<Credits>(await admin("GET", `/admin/v1/tenants/${tenantId}/credits`), 200);
const balance = async (tenantId: string) => (await credits(tenantId)).balance;

/** The balance once the edge's waitUntil (a release) has run. */
const settlesAt = (tenantId: string, expected: number) =>
  vi.waitFor(async () => expect(await balance(tenantId)).toBe(expected), { timeout: 5_000 });

describe("prepaid credits at admission", () => {
  it("200 concurrent requests against 137 units: exactly 137 admitted, then 402, balance 0", async () => {
    const t = await prepaidTenant();
    await grant(t.tenantId, 137);
    const marker = uniq();
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => gateway(`/v1/${marker}/${i}`, { headers: bearer(t.key) })),
    );
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(137);
    expect(statuses.filter((s) => s === 402)).toHaveLength(63);
    const refused = responses.find((r) => r.status === 402) as Response;
    expect(refused.headers.get("content-type")).toBe("application/problem+json");
    expect(await refused.json()).toEqual({
      type: "https://gateway.dev/problems/credits_exhausted",
      title: "Credits exhausted",
      status: 402,
      detail:
        "The credit balance is 0 units and this request costs 1. Buy credits with POST /gateway/v1/credits/checkout.",
      code: "credits_exhausted",
      request_id: refused.headers.get("x-request-id"),
    });
    await Promise.all(responses.filter((r) => !r.bodyUsed).map((r) => r.text()));
    expect(await credits(t.tenantId)).toMatchObject({ balance: 0 });
    // Refused requests never reached the origin.
    expect(await (await fetch(`${env.ORIGIN_URL}/__calls?contains=${marker}`)).json()).toHaveLength(137);
  }, 60_000);

  it("mixed costs (1 and 5) under concurrency: units admitted + balance = 137, never negative", async () => {
    const t = await prepaidTenant();
    await grant(t.tenantId, 137);
    const marker = uniq();
    const paths = Array.from({ length: 200 }, (_, i) =>
      i % 2 === 0 ? `/v1/${marker}/${i}` : `/v1/reports/${marker}/${i}`,
    );
    const responses = await Promise.all(paths.map((p) => gateway(p, { headers: bearer(t.key) })));
    await Promise.all(responses.map((r) => r.text()));
    const cost = (i: number) => (i % 2 === 0 ? 1 : 5);
    const spent = responses.reduce((sum, r, i) => sum + (r.status === 200 ? cost(i) : 0), 0);
    expect(responses.every((r) => r.status === 200 || r.status === 402)).toBe(true);
    const left = await balance(t.tenantId);
    expect(spent + left).toBe(137);
    expect(left).toBeGreaterThanOrEqual(0);
    // 500 units of reports were asked for: some were refused, so what is left can't pay for one.
    expect(left).toBeLessThan(5);
    if (responses.some((r, i) => r.status === 402 && cost(i) === 1)) expect(left).toBe(0);
  }, 60_000);

  it("gives the hold back when the request is not billable: origin 5xx, 504 timeout; a 4xx is billable", async () => {
    const t = await prepaidTenant();
    await grant(t.tenantId, 10);
    const marker = uniq();
    expect((await gateway(`/v1/${marker}/a?status=503`, { headers: bearer(t.key) })).status).toBe(503);
    await settlesAt(t.tenantId, 10);
    const slow = await gateway(`/v1/slow/${marker}?ms=2000`, { headers: bearer(t.key) });
    expect(slow.status).toBe(504);
    await settlesAt(t.tenantId, 10);
    expect((await gateway(`/v1/${marker}/b?status=404`, { headers: bearer(t.key) })).status).toBe(404);
    expect((await gateway(`/v1/reports/${marker}/c`, { headers: bearer(t.key) })).status).toBe(200);
    await settlesAt(t.tenantId, 4);
  });

  it("test keys never touch credits, even at a zero balance", async () => {
    const t = await prepaidTenant();
    const testKey = await createKey(t.tenantId, { env: "test" });
    const res = await gateway(`/v1/${uniq()}/sandbox`, { headers: bearer(testKey.key) });
    expect(res.status).toBe(200);
    expect(await balance(t.tenantId)).toBe(0);
    expect((await gateway(`/v1/${uniq()}/live`, { headers: bearer(t.key) })).status).toBe(402);
  });

  it("an idempotent replay is not charged again", async () => {
    const t = await prepaidTenant();
    await grant(t.tenantId, 10);
    const path = `/v1/${uniq()}/pay`;
    const init = () => ({
      method: "POST",
      headers: { ...bearer(t.key), "idempotency-key": `k-${t.tenantId}`, "content-type": "application/json" },
      body: '{"a":1}',
    });
    expect((await gateway(path, init())).status).toBe(200);
    await vi.waitFor(
      async () => {
        const again = await gateway(path, init());
        expect(again.headers.get("idempotent-replayed")).toBe("true");
      },
      { timeout: 5_000 },
    );
    expect(await balance(t.tenantId)).toBe(9);
  });

  it("a tenant off a prepaid plan spends no credits", async () => {
    const t = await seedTenant();
    expect((await gateway(`/v1/${uniq()}/free`, { headers: bearer(t.key) })).status).toBe(200);
    expect(await balance(t.tenantId)).toBe(0);
  });
});

describe("credit holds in the tenant object", () => {
  it("a release is idempotent and bounded: after the hold's lease it is spent for good", async () => {
    const t = await prepaidTenant();
    await grant(t.tenantId, 10);
    const stub = env.TENANT.getByName(t.tenantId);
    const now = Date.parse("2027-05-01T12:00:00Z");
    const input: AdmitInput = {
      keyId: t.keyId,
      keyLimit: null,
      cost: 3,
      config: { version: 0, status: "active", limits: PREPAID_LIMITS, credits: true },
      idempotency: null,
      creditHoldMs: 90_000,
    };
    const result = await runInDurableObject(stub, (o: TenantLimiter) => {
      const hold = (d: ReturnType<TenantLimiter["decide"]>) =>
        d.outcome === "admitted" ? (d.creditHold?.id as string) : "";
      const a = hold(o.decide(input, now));
      const b = hold(o.decide(input, now));
      return {
        first: o.releaseAt(a, now + 89_999),
        again: o.releaseAt(a, now + 89_999),
        late: o.releaseAt(b, now + 90_000),
      };
    });
    expect(result).toEqual({ first: true, again: false, late: false });
    expect(await balance(t.tenantId)).toBe(7);
  });
});

describe("credit grants", () => {
  it("grantCredits is idempotent on its id, even under concurrent duplicates", async () => {
    const t = await prepaidTenant();
    const results = await Promise.all(
      Array.from({ length: 5 }, () => grantCredits(env, t.tenantId, { id: `g-${t.tenantId}`, units: 50 })),
    );
    expect(results.filter((r) => r.outcome === "granted")).toEqual([{ outcome: "granted", balance: 50 }]);
    expect(results.filter((r) => r.outcome === "duplicate")).toHaveLength(4);
    expect(await balance(t.tenantId)).toBe(50);
  });

  it("a paid checkout session grants its units once, whatever the number of events; unpaid or foreign ones are ignored", async () => {
    const t = await prepaidTenant();
    const tenant = await expectJson<{ billing: { customerId: string } }>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}`),
      200,
    );
    const session = (over: Partial<Stripe.Checkout.Session> = {}) =>
      ({
        id: `cs_test_${uniq()}`,
        object: "checkout.session",
        mode: "payment",
        payment_status: "paid",
        customer: tenant.billing.customerId,
        client_reference_id: t.tenantId,
        metadata: { tenant_id: t.tenantId, units: "200", plan_id: t.plan.id, pricing_version: "1" },
        amount_total: 1000,
        currency: "usd",
        ...over,
      }) as Stripe.Checkout.Session;
    const { db, close } = openDb(env);
    try {
      const paid = session();
      expect(await grantCheckout(env, db, paid, "evt_1")).toBe("applied");
      expect(await grantCheckout(env, db, paid, "evt_2")).toBe("duplicate");
      expect(await grantCheckout(env, db, session({ payment_status: "unpaid" }), "evt_3")).toBe("ignored");
      expect(await grantCheckout(env, db, session({ customer: "cus_someone_else" }), "evt_4")).toBe(
        "ignored",
      );
      expect(
        await grantCheckout(env, db, session({ metadata: { tenant_id: t.tenantId, units: "-5" } }), "evt_5"),
      ).toBe("ignored");
      const view = await credits(t.tenantId);
      expect(view.balance).toBe(200);
      expect(view.ledger.data).toEqual([
        expect.objectContaining({
          id: `cg_${paid.id}`,
          kind: "grant",
          units: 200,
          amount: 1000,
          currency: "usd",
        }),
      ]);
    } finally {
      await close();
    }
  });

  it("a grant the object never got (crash between the two writes) is applied by the cron", async () => {
    const t = await prepaidTenant();
    const { db, close } = openDb(env);
    try {
      await db.execute(sql`INSERT INTO credit_ledger (id, tenant_id, kind, units, reason, actor, created_at)
        VALUES (${`cadj_lost_${t.tenantId}`}, ${t.tenantId}, 'adjustment', 30, 'lost', 'test', ${new Date(Date.now() - 120_000)})`);
      expect(await balance(t.tenantId)).toBe(0);
      await runCron();
      expect(await balance(t.tenantId)).toBe(30);
      await runCron();
      expect(await balance(t.tenantId)).toBe(30);
    } finally {
      await close();
    }
  });

  it("admin adjustments carry a reason and who; a debit past the balance is 409 and records nothing", async () => {
    const t = await prepaidTenant();
    const added = await grant(t.tenantId, 20);
    expect(added.balance).toBe(20);
    const debit = await admin("POST", `/admin/v1/tenants/${t.tenantId}/credits`, {
      units: -25,
      reason: "goodwill reversal",
      actor: "ops@test",
    });
    expect(debit.status).toBe(409);
    expect(await debit.json()).toMatchObject({
      code: "conflict",
      detail: "The balance is 20 units: a debit of 25 would take it below zero.",
    });
    const ok = await expectJson<{ balance: number }>(
      await admin("POST", `/admin/v1/tenants/${t.tenantId}/credits`, {
        units: -5,
        reason: "duplicate top-up",
        actor: "ops@test",
      }),
      201,
    );
    expect(ok.balance).toBe(15);
    const noReason = await admin("POST", `/admin/v1/tenants/${t.tenantId}/credits`, { units: 5, actor: "x" });
    expect(noReason.status).toBe(400);
    expect(
      (await admin("POST", `/admin/v1/tenants/${t.tenantId}/credits`, { units: 0, reason: "r", actor: "x" }))
        .status,
    ).toBe(400);
    expect(
      (await admin("POST", "/admin/v1/tenants/ten_nope/credits", { units: 5, reason: "r", actor: "x" }))
        .status,
    ).toBe(404);
    const view = await credits(t.tenantId);
    expect(view.balance).toBe(15);
    expect(view.ledger.data.map((e) => [e.kind, e.units, e.reason, e.actor])).toEqual([
      ["adjustment", -5, "duplicate top-up", "ops@test"],
      ["adjustment", 20, "test top-up", "ops@test"],
    ]);
    const metered = await seedTenant();
    const refused = await admin("POST", `/admin/v1/tenants/${metered.tenantId}/credits`, {
      units: 5,
      reason: "r",
      actor: "x",
    });
    expect(refused.status).toBe(409);
  });
});

describe("tenant API", () => {
  it("GET /gateway/v1/credits shows the caller's balance and only its own ledger", async () => {
    const a = await prepaidTenant();
    const b = await prepaidTenant();
    await grant(a.tenantId, 7);
    await grant(b.tenantId, 9);
    const view = await expectJson<Credits>(
      await gateway("/gateway/v1/credits", { headers: bearer(a.key) }),
      200,
    );
    expect(view.balance).toBe(7);
    expect(view.ledger.data.map((e) => e.units)).toEqual([7]);
  });

  it("POST /gateway/v1/credits/checkout: not on a prepaid plan → 409; test key → 403; bad packs → 400", async () => {
    const metered = await seedTenant();
    const post = (key: string, body: unknown) =>
      gateway("/gateway/v1/credits/checkout", {
        method: "POST",
        headers: { ...bearer(key), "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const res = await post(metered.key, { packs: 1 });
    expect(res.status).toBe(409);
    expect(await res.json()).toMatchObject({ code: "conflict" });
    const t = await prepaidTenant();
    const testKey = await createKey(t.tenantId, { env: "test", role: "admin" });
    expect((await post(testKey.key, { packs: 1 })).status).toBe(403);
    expect((await post(t.key, { packs: 0 })).status).toBe(400);
    expect((await post(t.key, { packs: 101 })).status).toBe(400);
  });
});

describe("OpenAPI", () => {
  it("documents the credit endpoints and the reconciliation's credits column", async () => {
    const doc = await expectJson<{
      paths: Record<string, unknown>;
      components: { schemas: Record<string, unknown> };
    }>(await gateway("/gateway/openapi.json"), 200);
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/gateway/v1/credits",
        "/gateway/v1/credits/checkout",
        "/admin/v1/tenants/{id}/credits",
      ]),
    );
    expect(Object.keys(doc.components.schemas)).toEqual(
      expect.arrayContaining([
        "Credits",
        "CreditEntry",
        "CreditCheckout",
        "CreditAdjustment",
        "CreditReconciliationRow",
      ]),
    );
  });
});

describe("settlement and reconciliation", () => {
  it("settles one usage row per tenant-hour once; reconciles to zero; a tampered row shows", async () => {
    clock.set("2027-03-10T10:20:00.000Z");
    const t = await prepaidTenant();
    const granted = await grant(t.tenantId, 50);
    const marker = uniq();
    const events = await captureUsage(async () => {
      for (let i = 0; i < 3; i++) await gateway(`/v1/${marker}/${i}`, { headers: bearer(t.key) });
      await gateway(`/v1/reports/${marker}`, { headers: bearer(t.key) });
      await gateway(`/v1/${marker}/down?status=500`, { headers: bearer(t.key) });
    }, 5);
    await settlesAt(t.tenantId, 42);
    await deliver(events);

    const before = await reconciliation(t.tenantId);
    expect(before.credits).toEqual([
      expect.objectContaining({
        objectBalance: 42,
        ledgerBalance: 42,
        settledUnits: 0,
        unsettledUnits: 8,
        difference: false,
      }),
    ]);

    clock.set("2027-03-10T11:14:59.999Z");
    const { db, close } = openDb(env);
    try {
      const settled = async () =>
        (
          await db.execute<{ units: number; hour: Date }>(
            sql`SELECT units, hour FROM credit_ledger WHERE tenant_id = ${t.tenantId} AND kind = 'usage'`,
          )
        ).rows.map((r) => [r.units, new Date(r.hour).toISOString()]);
      // The hour is settled 15 min after it ends, not a millisecond before.
      await settleCreditUsage(db);
      expect(await settled()).toEqual([]);
      clock.set("2027-03-10T11:15:00.000Z");
      // The cron's credits step (the whole cron would also report this 2027 usage to the stand-in, on the real clock).
      await creditsCron(env);
      await creditsCron(env);
      expect(await settled()).toEqual([[-8, "2027-03-10T10:00:00.000Z"]]);
      const after = await reconciliation(t.tenantId);
      expect(after.creditDifferences).toBe(0);
      expect(after.credits).toEqual([
        expect.objectContaining({ objectBalance: 42, ledgerBalance: 42, settledUnits: 8, unsettledUnits: 0 }),
      ]);

      await db.execute(sql`UPDATE credit_ledger SET units = 51 WHERE id = ${granted.entry.id}`);
      const tampered = await reconciliation(t.tenantId);
      expect(tampered.creditDifferences).toBe(1);
      expect(tampered.credits).toEqual([
        expect.objectContaining({ objectBalance: 42, ledgerBalance: 43, difference: true }),
      ]);
      await db.execute(sql`UPDATE credit_ledger SET units = 50 WHERE id = ${granted.entry.id}`);
      await db.execute(
        sql`UPDATE credit_ledger SET units = -7 WHERE tenant_id = ${t.tenantId} AND kind = 'usage'`,
      );
      const drift = await reconciliation(t.tenantId);
      expect(drift.credits).toEqual([expect.objectContaining({ settledDrift: 1, difference: true })]);
    } finally {
      await close();
    }
  });
});

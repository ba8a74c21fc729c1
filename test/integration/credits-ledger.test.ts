/**
 * README "Prepaid credits", the ledger: grants are idempotent (in the object, per checkout session,
 * and healed by the cron when the object missed one), admin adjustments carry a reason and who, a
 * tenant reads only its own ledger, usage is settled once per tenant-hour, and reconciliation's
 * credits column is zero after all that and shows a tampered row.
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { grantCheckout } from "../../workers/billing/credits/checkout-completed";
import { creditsCron, settleCreditUsage } from "../../workers/billing/credits/settlement";
import { openDb } from "../../workers/shared/db";
import { grantCredits } from "../../workers/shared/tenant-client";
import { controlledClock } from "../support/clock";
import { balance, type Credits, credits, grant, prepaidTenant, settlesAt } from "../support/credits";
import { admin, bearer, createKey, expectJson, gateway, seedTenant, uniq } from "../support/gateway";
import { captureUsage, deliver, reconciliation, runCron } from "../support/metering";

const clock = controlledClock();

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
    const events = await captureUsage(
      async () => {
        for (let i = 0; i < 3; i++) await gateway(`/v1/${marker}/${i}`, { headers: bearer(t.key) });
        await gateway(`/v1/reports/${marker}`, { headers: bearer(t.key) });
        await gateway(`/v1/${marker}/down?status=500`, { headers: bearer(t.key) });
      },
      5,
      t.tenantId,
    );
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

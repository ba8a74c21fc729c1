/**
 * README "Prepaid credits", at admission: a prepaid tenant's balance lives in its tenant object and is
 * charged in the same atomic admission as the limits — exact under 200 concurrent requests, 402
 * `credits_exhausted` when a request doesn't fit, given back when a request is not billable (bounded
 * by the hold's lease), never touched by test keys or replays.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { AdmitInput, TenantLimiter } from "../../durable-objects/tenant";
import { balance, credits, grant, PREPAID_LIMITS, prepaidTenant, settlesAt } from "../support/credits";
import { bearer, createKey, gateway, seedTenant, uniq } from "../support/gateway";

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

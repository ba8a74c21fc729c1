/** Idempotency-Key: once-only origin calls under concurrency, replays, conflicts, and no stuck keys. */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { AdmitInput, TenantLimiter } from "../../durable-objects/tenant";
import { bearer, gateway, originCalls, seedTenant, uniq } from "../support/gateway";
import { watchUsage } from "../support/metering";

const post = (key: string, path: string, body: string, idempotencyKey?: string) =>
  gateway(path, {
    method: "POST",
    headers: {
      ...bearer(key),
      "content-type": "application/json",
      ...(idempotencyKey === undefined ? {} : { "idempotency-key": idempotencyKey }),
    },
    body,
  });

describe("Idempotency-Key", () => {
  it("calls the origin once for 20 concurrent identical requests; the rest replay or get 409", {
    timeout: 30_000,
  }, async () => {
    const t = await seedTenant();
    const marker = uniq();
    const body = JSON.stringify({ amount: 100, marker });
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => post(t.key, `/v1/charges/${marker}`, body, `charge-${marker}`)),
    );
    expect(await originCalls(marker)).toHaveLength(1);
    const kinds = responses.map((r) =>
      r.status === 409
        ? "in_flight"
        : r.headers.get("idempotent-replayed") === "true"
          ? "replay"
          : `first-${r.status}`,
    );
    expect(kinds.filter((k) => k === "first-200")).toHaveLength(1);
    expect(kinds.every((k) => ["first-200", "replay", "in_flight"].includes(k))).toBe(true);
    const conflict = responses.find((r) => r.status === 409);
    if (conflict) {
      expect((await conflict.json<{ code: string }>()).code).toBe("idempotency_key_in_use");
    }
  });

  it("replays the recorded response byte for byte, without calling the origin or billing again", async () => {
    const t = await seedTenant({ plan: { burstCapacity: 10, refillTokens: 1, refillPeriodSeconds: 86_400 } });
    const marker = uniq();
    const body = JSON.stringify({ marker });
    const usage = watchUsage();
    const first = await post(t.key, `/v1/orders/${marker}?status=201`, body, `"order-${marker}"`);
    const firstBody = await first.arrayBuffer();
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();

    try {
      // The bare form names the same key as the quoted one.
      const replay = await vi.waitFor(async () => {
        const r = await post(t.key, `/v1/orders/${marker}?status=201`, body, `order-${marker}`);
        if (r.status === 409) throw new Error("still recording");
        return r;
      });
      expect(replay.status).toBe(201);
      expect(replay.headers.get("idempotent-replayed")).toBe("true");
      expect(replay.headers.get("x-origin")).toBe("test");
      expect(new Uint8Array(await replay.arrayBuffer())).toEqual(new Uint8Array(firstBody));
      expect(replay.headers.get("x-request-id")).not.toBe(first.headers.get("x-request-id"));
      expect(replay.headers.get("x-ratelimit-burstremaining")).toBe(
        first.headers.get("x-ratelimit-burstremaining"),
      );
      // A request after the replay: once its event is sent, any event of the replay would have been.
      const after = await gateway(`/v1/after/${uniq()}`, { headers: bearer(t.key) });
      await after.arrayBuffer();
      await usage.sent(after.headers.get("x-request-id"));
      const ours = usage.events().filter((e) => e.tenantId === t.tenantId);
      expect(ours.map((e) => e.id)).toEqual([
        first.headers.get("x-request-id"),
        after.headers.get("x-request-id"),
      ]);
    } finally {
      usage.restore();
    }
    expect(await originCalls(marker)).toHaveLength(1);
  });

  it("refuses the same key with a different body (422) and a malformed key (400)", async () => {
    const t = await seedTenant();
    const marker = uniq();
    expect((await post(t.key, `/v1/${marker}`, '{"a":1}', `k-${marker}`)).status).toBe(200);
    const mismatch = await post(t.key, `/v1/${marker}`, '{"a":2}', `k-${marker}`);
    expect(mismatch.status).toBe(422);
    expect(mismatch.headers.get("content-type")).toBe("application/problem+json");
    expect((await mismatch.json<{ code: string }>()).code).toBe("idempotency_key_mismatch");
    for (const bad of ['"unterminated', "has space", "x".repeat(300), ""]) {
      const res = await post(t.key, `/v1/${marker}/bad`, "{}", bad);
      expect(res.status, bad).toBe(400);
      expect((await res.json<{ code: string }>()).code).toBe("bad_request");
    }
    expect(await originCalls(`${marker}/bad`)).toHaveLength(0);
  });

  it("releases the key when the origin fails, so a retry reaches the origin again", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const first = await post(t.key, `/v1/${marker}?status=503`, "{}", `fail-${marker}`);
    expect(first.status).toBe(503);
    await vi.waitFor(async () => {
      const retry = await post(t.key, `/v1/${marker}?status=503`, "{}", `fail-${marker}`);
      expect(retry.status).toBe(503);
      expect(retry.headers.get("idempotent-replayed")).toBeNull();
    });
    expect((await originCalls(marker)).length).toBeGreaterThanOrEqual(2);

    const dead = await post(t.key, `/dead/${marker}`, "{}", `dead-${marker}`);
    expect(dead.status).toBe(502);
    await vi.waitFor(async () =>
      expect((await post(t.key, `/dead/${marker}`, "{}", `dead-${marker}`)).status).toBe(502),
    );
  });

  it("ignores Idempotency-Key on GET", async () => {
    const t = await seedTenant();
    const marker = uniq();
    for (let i = 0; i < 2; i++) {
      const res = await gateway(`/v1/${marker}`, {
        headers: { ...bearer(t.key), "idempotency-key": `g-${marker}` },
      });
      expect(res.headers.get("idempotent-replayed")).toBeNull();
    }
    expect(await originCalls(marker)).toHaveLength(2);
  });
});

describe("idempotency records over time", () => {
  const input = (fingerprint: string): AdmitInput => ({
    keyId: "key_idem",
    keyLimit: null,
    cost: 1,
    config: {
      version: 1,
      status: "active",
      limits: {
        burstCapacity: 100,
        refillTokens: 100,
        refillPeriodSeconds: 1,
        dailyQuota: null,
        monthlyQuota: null,
      },
    },
    idempotency: { key: "k1", fingerprint, leaseMs: 60_000 },
  });

  it("lets a retry take over a lease its holder never completed", async () => {
    const stub = env.TENANT.getByName(`idem-${uniq()}`);
    const outcomes = await runInDurableObject(stub, (o: TenantLimiter) => {
      const t0 = Date.now();
      return [
        o.decide(input("fp"), t0).outcome,
        o.decide(input("fp"), t0 + 59_999).outcome,
        o.decide(input("fp"), t0 + 60_000).outcome,
      ];
    });
    expect(outcomes).toEqual(["admitted", "idempotency_in_flight", "admitted"]);
  });

  it("deletes records after 24 h with the cleanup alarm", async () => {
    const stub = env.TENANT.getByName(`idem-${uniq()}`);
    await runInDurableObject(stub, async (o: TenantLimiter, state) => {
      o.decide(input("fp"), Date.now() - 25 * 3600_000);
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const left = await runInDurableObject(stub, (_o: TenantLimiter, state) =>
      state.storage.sql.exec("SELECT count(*) AS n FROM idempotency").one(),
    );
    expect(left.n).toBe(0);
  });
});

/** Idempotency-Key: once-only origin calls under concurrency, replays, conflicts, and no stuck keys. */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { RETENTION_MS } from "../../durable-objects/idempotency";
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
    expect(kinds.filter((k) => !["first-200", "replay", "in_flight"].includes(k))).toEqual([]);
  });

  it("answers 409 idempotency_key_in_use while the first request is still at the origin", async () => {
    const t = await seedTenant();
    const marker = uniq();
    // The origin holds `/slow` for 1.5 s: the first request is in flight for all of that time.
    const path = `/v1/${marker}/slow?ms=1500`;
    const first = post(t.key, path, "{}", `held-${marker}`);
    await vi.waitFor(async () => expect(await originCalls(marker)).toHaveLength(1), { timeout: 5_000 });

    const second = await post(t.key, path, "{}", `held-${marker}`);
    expect(second.status).toBe(409);
    expect(second.headers.get("content-type")).toBe("application/problem+json");
    expect(await second.json()).toMatchObject({
      status: 409,
      code: "idempotency_key_in_use",
      request_id: second.headers.get("x-request-id"),
    });
    expect((await first).status).toBe(200);
    expect(await originCalls(marker)).toHaveLength(1);
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
    /** The retry once the first request's release has landed (until then it is 409 in flight). */
    const retry = (path: string, key: string) =>
      vi.waitFor(async () => {
        const res = await post(t.key, path, "{}", key);
        if (res.status === 409) throw new Error("the key is not released yet");
        return res;
      });

    const first = await post(t.key, `/v1/${marker}?status=503`, "{}", `fail-${marker}`);
    expect(first.status).toBe(503);
    expect(await originCalls(marker)).toHaveLength(1);
    const again = await retry(`/v1/${marker}?status=503`, `fail-${marker}`);
    expect(again.status).toBe(503);
    expect(again.headers.get("idempotent-replayed")).toBeNull();
    // Not a replay: the origin saw the retry, and echoed the retry's own request id.
    expect(await originCalls(marker)).toHaveLength(2);
    expect((await again.json<{ headers: Record<string, string> }>()).headers["x-request-id"]).toBe(
      again.headers.get("x-request-id"),
    );

    // 502: the gateway's own answer for an unreachable origin. The retry tried the origin again (its
    // Server-Timing has an origin step, and its problem body names its own request id).
    const dead = await post(t.key, `/dead/${marker}`, "{}", `dead-${marker}`);
    expect(dead.status).toBe(502);
    const deadAgain = await retry(`/dead/${marker}`, `dead-${marker}`);
    expect(deadAgain.status).toBe(502);
    expect(deadAgain.headers.get("idempotent-replayed")).toBeNull();
    expect(deadAgain.headers.get("server-timing")).toMatch(/origin;dur=/);
    expect(await deadAgain.json()).toMatchObject({
      code: "origin_unavailable",
      request_id: deadAgain.headers.get("x-request-id"),
    });
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
  const HOUR = 3_600_000;
  const input = (fingerprint: string, key = "k1"): AdmitInput => ({
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
    idempotency: { key, fingerprint, leaseMs: 60_000 },
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
    // Scheduling: an idempotent request through the gateway leaves the tenant object with an alarm
    // at its record's expiry, 24 h after admission.
    const t = await seedTenant();
    const before = Date.now();
    const res = await post(t.key, `/v1/${uniq()}`, "{}", `alarm-${uniq()}`);
    expect(res.status).toBe(200);
    const after = Date.now();
    const scheduled = await runInDurableObject(env.TENANT.getByName(t.tenantId), (_o: TenantLimiter, state) =>
      state.storage.getAlarm(),
    );
    expect(scheduled).toBeGreaterThanOrEqual(before + RETENTION_MS);
    expect(scheduled).toBeLessThanOrEqual(after + RETENTION_MS);

    // Running it: an admission schedules the alarm for its record's expiry; records admitted 25 h
    // and 23 h ago join it (on the object's own clock). Running the alarm deletes the expired one,
    // keeps the younger ones, and sets the alarm again for the next expiry.
    const stub = env.TENANT.getByName(`idem-${uniq()}`);
    const { freshAt, youngAt, due } = await runInDurableObject(stub, async (o: TenantLimiter, state) => {
      const fresh = await o.admit(input("fp", "fresh"));
      if (fresh.outcome !== "admitted") throw new Error(`not admitted: ${fresh.outcome}`);
      const due = await state.storage.getAlarm();
      const now = Date.now();
      o.decide(input("fp", "old"), now - 25 * HOUR);
      o.decide(input("fp", "young"), now - 23 * HOUR);
      return { freshAt: fresh.admittedAt, youngAt: now - 23 * HOUR, due };
    });
    expect(due).toBe(freshAt + RETENTION_MS);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const { keys, alarm } = await runInDurableObject(stub, async (_o: TenantLimiter, state) => ({
      keys: state.storage.sql
        .exec<{ key: string }>("SELECT key FROM idempotency ORDER BY key")
        .toArray()
        .map((r) => r.key),
      alarm: await state.storage.getAlarm(),
    }));
    expect(keys).toEqual(["fresh", "young"]);
    expect(alarm).toBe(youngAt + RETENTION_MS);
  });
});

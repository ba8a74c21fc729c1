/**
 * README "Idempotency-Key", the claims the older idempotency tests do not name: scoped per tenant;
 * the in-flight lease is the origin timeout + 60 s (the route's `timeoutMs`, else ORIGIN_TIMEOUT_MS);
 * a 504 releases the key; responses over 1 MiB are not recorded (the key is released).
 */
import { createExecutionContext, runInDurableObject, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { TenantLimiter } from "../../durable-objects/tenant";
import worker from "../../workers/index";
import { BASE, bearer, gateway, originCalls, seedTenant, uniq } from "../support/gateway";

const post = (key: string, path: string, body: string, idempotencyKey: string) =>
  gateway(path, {
    method: "POST",
    headers: { ...bearer(key), "content-type": "application/json", "idempotency-key": idempotencyKey },
    body,
  });

/** Waits until a retry is neither 409 (lease held) nor refused, and returns it. */
async function settled(send: () => Promise<Response>): Promise<Response> {
  return vi.waitFor(
    async () => {
      const res = await send();
      if (res.status === 409) throw new Error("still in flight");
      return res;
    },
    { timeout: 5_000, interval: 50 },
  );
}

const leases = (tenantId: string) =>
  runInDurableObject(env.TENANT.getByName(tenantId), (_o: TenantLimiter, state) =>
    state.storage.sql.exec<{ lease_until: number }>("SELECT lease_until FROM idempotency").toArray(),
  );

describe("Idempotency-Key scope and lease", () => {
  it("is scoped per tenant: the same key, path and body from another tenant reaches the origin, not a replay", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const marker = uniq();
    const path = `/v1/${marker}/charge`;
    const body = JSON.stringify({ amount: 5 });
    const first = await post(a.key, path, body, `shared-${marker}`);
    expect(first.status).toBe(200);
    await first.arrayBuffer();
    // a's own retry is a replay once recorded (the control: the key was recorded)
    const replay = await settled(() => post(a.key, path, body, `shared-${marker}`));
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    await replay.arrayBuffer();

    const other = await post(b.key, path, body, `shared-${marker}`);
    expect(other.status).toBe(200);
    expect(other.headers.get("idempotent-replayed")).toBeNull();
    const echoed = await other.json<{ headers: Record<string, string> }>();
    expect(echoed.headers["x-gateway-claims"]).toBeTruthy();
    expect(await originCalls(marker)).toHaveLength(2);
  });

  it("holds the in-flight lease for the origin timeout + 60 s (route timeoutMs, else ORIGIN_TIMEOUT_MS)", async () => {
    const t = await seedTenant();
    const routes = [
      { prefix: "/v1/", cost: 1, billable: true, entitlement: "api" },
      { prefix: "/v1/t/", cost: 1, billable: true, entitlement: "api", timeoutMs: 4_000 },
    ];
    const vars = { ORIGIN_TIMEOUT_MS: "7000", ROUTES: JSON.stringify(routes) };
    for (const [path, leaseMs] of [
      [`/v1/${uniq()}/slow?ms=1500`, 7_000 + 60_000],
      [`/v1/t/${uniq()}/slow?ms=1500`, 4_000 + 60_000],
    ] as const) {
      const before = Date.now();
      const ctx = createExecutionContext();
      const pending = worker.fetch(
        new Request(`${BASE}${path}`, {
          method: "POST",
          headers: { ...bearer(t.key), "idempotency-key": `lease-${uniq()}` },
          body: "{}",
        }),
        { ...env, ...vars } as never,
        ctx as never,
      );
      const rows = await vi.waitFor(
        async () => {
          const r = await leases(t.tenantId);
          if (r.length !== 1) throw new Error(`${r.length} idempotency rows`);
          return r;
        },
        { timeout: 1_200, interval: 20 },
      );
      const seen = Date.now();
      const lease = (rows[0]?.lease_until as number) - before;
      expect(lease, path).toBeGreaterThanOrEqual(leaseMs);
      expect(lease, path).toBeLessThanOrEqual(leaseMs + (seen - before));
      const res = await pending;
      expect(res.status, path).toBe(200);
      await res.arrayBuffer();
      await waitOnExecutionContext(ctx);
      // recorded now: the row is done, and the next case starts from an empty table
      await runInDurableObject(env.TENANT.getByName(t.tenantId), (_o: TenantLimiter, state) =>
        state.storage.sql.exec("DELETE FROM idempotency"),
      );
    }
  });

  it("releases the key on a 504, so a retry reaches the origin again", async () => {
    const t = await seedTenant();
    const marker = uniq();
    const path = `/v1/slow/${marker}?ms=1000`; // the /v1/slow/ route times out after 300 ms
    const first = await post(t.key, path, "{}", `timeout-${marker}`);
    expect(first.status).toBe(504);
    expect(first.headers.get("content-type")).toBe("application/problem+json");
    expect(await first.json()).toEqual({
      type: "https://gateway.dev/problems/origin_timeout",
      title: "Origin timeout",
      status: 504,
      detail: "The origin did not answer within 300 ms.",
      code: "origin_timeout",
      request_id: first.headers.get("x-request-id"),
    });
    const retry = await settled(() => post(t.key, path, "{}", `timeout-${marker}`));
    expect(retry.status).toBe(504);
    expect(retry.headers.get("idempotent-replayed")).toBeNull();
    expect((await originCalls(marker)).length).toBeGreaterThanOrEqual(2);
  });

  it("does not record a response over 1 MiB (the key is released); one under it is replayed", async () => {
    const t = await seedTenant();
    // the test origin echoes the request body, so the response is a little larger than it
    for (const [size, replayed] of [
      [900 * 1024, true],
      [1024 * 1024 + 1, false],
    ] as const) {
      const marker = uniq();
      const path = `/v1/${marker}/big`;
      const body = JSON.stringify({ pad: "x".repeat(size) });
      const first = await post(t.key, path, body, `big-${marker}`);
      expect(first.status).toBe(200);
      const firstBytes = (await first.arrayBuffer()).byteLength;
      expect(firstBytes > 1024 * 1024, `${size}`).toBe(!replayed);
      const retry = await settled(() => post(t.key, path, body, `big-${marker}`));
      expect(retry.status).toBe(200);
      expect(retry.headers.get("idempotent-replayed"), `${size}`).toBe(replayed ? "true" : null);
      await retry.arrayBuffer();
      expect(await originCalls(marker), `${size}`).toHaveLength(replayed ? 1 : 2);
    }
  });
});

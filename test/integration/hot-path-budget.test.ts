/**
 * README "Hot path budget": 0 Postgres queries and 0 Stripe calls on a proxied request, and
 * "authenticate": format and checksum are checked before any lookup (no KV read for a bad key).
 *
 * The Postgres/Stripe claim is shown the blunt way: the real default export of workers/index.ts
 * is called with a copy of the test env whose DATABASE_URL, PG_WS_PROXY and STRIPE_API_URL point at
 * a dead port. The proxy must still answer 200; a control request (`/health/ready`, which does query
 * Postgres) shows the same env really cannot reach Postgres.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../workers/index";
import { generateKey } from "../../workers/shared/api-keys";
import { kvReads } from "../../workers/shared/key-store";
import { BASE, bearer, gateway, originCalls, seedTenant, uniq } from "../support/gateway";

const DEAD = "http://127.0.0.1:1";
const deadBackends = {
  DATABASE_URL: "postgres://postgres@127.0.0.1:1/postgres",
  PG_WS_PROXY: "127.0.0.1:1/v1",
  STRIPE_API_URL: DEAD,
};

async function call(path: string, init: RequestInit = {}): Promise<{ res: Response; body: string }> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(
    new Request(`${BASE}${path}`, init),
    { ...env, ...deadBackends } as never,
    ctx as never,
  );
  const body = await res.text();
  await waitOnExecutionContext(ctx);
  return { res, body };
}

describe("hot path budget", () => {
  it("proxies with Postgres and Stripe both unreachable: 0 Postgres queries, 0 Stripe calls", async () => {
    const t = await seedTenant(); // through the admin API, on the working Postgres
    const marker = uniq();
    // cold (KV lookup, tenant object) and warm, GET and POST, with an Idempotency-Key
    for (const [i, init] of [
      {},
      {},
      { method: "POST", body: '{"a":1}', headers: { "idempotency-key": `hp-${marker}` } },
    ].entries()) {
      const { res, body } = await call(`/v1/${marker}/${i}`, {
        ...init,
        headers: { ...bearer(t.key), ...(init.headers ?? {}) },
      });
      expect(res.status, body).toBe(200);
      expect(res.headers.get("x-ratelimit-tenant")).toBe(t.slug);
    }
    expect(await originCalls(marker)).toHaveLength(3);

    // the control: the same env cannot reach Postgres
    const ready = await call("/health/ready");
    expect(ready.res.status).toBe(503);
  });

  it("checks format and checksum before any KV read; an unknown well-formed key does read KV", async () => {
    // the control first: the counter moves for a key that passes the checksum but is unknown
    const unknown = generateKey("live");
    const cold = kvReads.count;
    expect((await gateway("/v1/checksum", { headers: bearer(unknown) })).status).toBe(401);
    expect(kvReads.count - cold).toBeGreaterThanOrEqual(1);

    // never seen by this isolate either, but refused on format or checksum: no KV read
    const good = generateKey("live");
    const badChecksum = good.slice(0, -1) + (good.endsWith("a") ? "b" : "a");
    const before = kvReads.count;
    for (const key of [badChecksum, "gw_live_short", `${good}x`]) {
      expect((await gateway("/v1/checksum", { headers: bearer(key) })).status).toBe(401);
    }
    expect(kvReads.count - before).toBe(0);
  });
});

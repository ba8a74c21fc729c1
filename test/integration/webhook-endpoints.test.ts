/**
 * The webhooks API: a tenant manages its endpoints (`/gateway/v1/webhooks`), the operator any
 * tenant's (`/admin/v1/…webhooks`) and the dead-letter store. Asserts the rows and the API, not
 * arrivals at a receiver (the delivery engine's tests do that). Attempts and dead deliveries are
 * written straight into the test database, as the engine would have left them.
 */
import { env } from "cloudflare:workers";
import { eq, sql } from "drizzle-orm";
import { beforeAll, describe, expect, it } from "vitest";
import { webhookAttempts, webhookDeliveries, webhookEndpoints, webhookEvents } from "../../schema";
import { EVENT_TYPES } from "../../workers/events/catalog";
import { newId } from "../../workers/shared/ids";
import { withDb } from "../support/db";
import { admin, bearer, createKey, expectJson, gateway, seedTenant, uniq } from "../support/gateway";

interface Endpoint {
  id: string;
  tenantId: string;
  url: string;
  description: string;
  eventTypes: string[];
  enabled: boolean;
  disabledReason: string | null;
  failingSince: string | null;
  previousSecretExpiresAt: string | null;
  secret?: string;
}

interface Attempt {
  attempt: number;
  startedAt: string;
  status: number | null;
  latencyMs: number;
  responseExcerpt: string | null;
  error: string | null;
}

interface Delivery {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: string;
  status: string;
  attemptCount: number;
  replays: number;
  lastStatus: number | null;
  lastError: string | null;
  attempts: Attempt[];
  endpointUrl?: string;
}

interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

const asKey = (key: string, method: string, path: string, body?: unknown) =>
  gateway(path, {
    method,
    headers: { ...bearer(key), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

/** A receiver URL the test env accepts (http on 127.0.0.1, WEBHOOK_ALLOW_LOCALHOST=true). */
const receiver = () => `${env.ORIGIN_URL}/hooks/${uniq()}`;

const SECRET = /^whsec_[A-Za-z0-9+/]{43}=$/;

async function createEndpoint(key: string, body: Record<string, unknown> = {}): Promise<Endpoint> {
  return expectJson<Endpoint>(
    await asKey(key, "POST", "/gateway/v1/webhooks", { url: receiver(), ...body }),
    201,
  );
}

async function expectProblem(res: Response, status: number, code: string): Promise<Record<string, unknown>> {
  const body = await expectJson<Record<string, unknown>>(res, status);
  expect(res.headers.get("content-type")).toBe("application/problem+json");
  expect(body).toMatchObject({ status, code, type: `https://gateway.dev/problems/${code}` });
  return body;
}

const endpointRow = (id: string) =>
  withDb(async (db) => (await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id)))[0]);

const deliveryRow = (id: string) =>
  withDb(async (db) => (await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.id, id)))[0]);

/**
 * A `key.created` event delivered to `endpoint` as the engine leaves it after `failures` failed
 * attempts: dead (retries exhausted) by default. Written directly: no queue message, so nothing
 * attempts it while the test looks.
 */
async function seedDelivery(
  endpoint: Endpoint,
  options: { status?: "dead" | "succeeded" | "pending"; failures?: number } = {},
): Promise<{ deliveryId: string; eventId: string }> {
  const eventId = newId("evt");
  const deliveryId = newId("dlv");
  const failures = options.failures ?? 2;
  const start = Date.now() - 60_000;
  await withDb(async (db) => {
    await db.insert(webhookEvents).values({
      id: eventId,
      tenantId: endpoint.tenantId,
      type: "key.created",
      data: { keyId: "key_x", env: "live", prefix: "gw_live_x", name: null },
    });
    await db.insert(webhookDeliveries).values({
      id: deliveryId,
      tenantId: endpoint.tenantId,
      eventId,
      endpointId: endpoint.id,
      status: options.status ?? "dead",
      attempts: failures,
      nextAttemptAt: null,
      lastStatus: 500,
      lastError: "HTTP 500",
    });
    if (failures > 0)
      await db.insert(webhookAttempts).values(
        Array.from({ length: failures }, (_, i) => ({
          tenantId: endpoint.tenantId,
          deliveryId,
          attempt: i + 1,
          startedAt: new Date(start + i * 5_000),
          status: i === 0 ? null : 500,
          latencyMs: 40 + i,
          responseExcerpt: i === 0 ? null : `{"error":"down ${i}"}`,
          error: i === 0 ? "connection refused" : "HTTP 500",
        })),
      );
  });
  return { deliveryId, eventId };
}

// The first request loads the Worker's whole bundle: let it count against the hook's timeout, not a test's.
beforeAll(async () => {
  await gateway("/health/live");
});

describe("webhook endpoints: the tenant API", () => {
  it("creates, lists, reads, updates and deletes an endpoint; the secret is shown once", async () => {
    const t = await seedTenant();
    const url = receiver();
    const created = await expectJson<Endpoint>(
      await asKey(t.key, "POST", "/gateway/v1/webhooks", {
        url,
        eventTypes: ["key.created", "key.revoked", "key.created"],
        description: "CRM sync",
      }),
      201,
    );
    expect(created).toMatchObject({
      tenantId: t.tenantId,
      url,
      description: "CRM sync",
      eventTypes: ["key.created", "key.revoked"],
      enabled: true,
      disabledReason: null,
      previousSecretExpiresAt: null,
    });
    expect(created.id).toMatch(/^whep_/);
    expect(created.secret).toMatch(SECRET);
    expect((await endpointRow(created.id))?.secret).toBe(created.secret);

    const list = await expectJson<Page<Endpoint>>(await asKey(t.key, "GET", "/gateway/v1/webhooks"), 200);
    expect(list.data.map((e) => e.id)).toEqual([created.id]);
    const read = await expectJson<Endpoint>(
      await asKey(t.key, "GET", `/gateway/v1/webhooks/${created.id}`),
      200,
    );
    for (const shown of [list.data[0], read]) {
      expect(shown).not.toHaveProperty("secret");
      expect(JSON.stringify(shown)).not.toContain(created.secret);
    }

    const patched = await expectJson<Endpoint>(
      await asKey(t.key, "PATCH", `/gateway/v1/webhooks/${created.id}`, {
        eventTypes: [],
        description: "everything",
        enabled: false,
      }),
      200,
    );
    expect(patched).toMatchObject({
      url,
      eventTypes: [],
      description: "everything",
      enabled: false,
      disabledReason: "tenant",
    });

    const deleted = await asKey(t.key, "DELETE", `/gateway/v1/webhooks/${created.id}`);
    expect(deleted.status).toBe(200);
    await expectProblem(await asKey(t.key, "GET", `/gateway/v1/webhooks/${created.id}`), 404, "not_found");
    expect(await endpointRow(created.id)).toBeUndefined();
  });

  it("re-enabling an endpoint the engine disabled clears the reason and the failure streak", async () => {
    const t = await seedTenant();
    const ep = await createEndpoint(t.key);
    await withDb((db) =>
      db
        .update(webhookEndpoints)
        .set({
          enabled: false,
          disabledReason: "failing",
          failingSince: new Date(Date.now() - 6 * 86_400_000),
        })
        .where(eq(webhookEndpoints.id, ep.id)),
    );
    const disabled = await expectJson<Endpoint>(
      await asKey(t.key, "GET", `/gateway/v1/webhooks/${ep.id}`),
      200,
    );
    expect(disabled).toMatchObject({ enabled: false, disabledReason: "failing" });
    expect(disabled.failingSince).not.toBeNull();

    const enabled = await expectJson<Endpoint>(
      await asKey(t.key, "PATCH", `/gateway/v1/webhooks/${ep.id}`, { enabled: true }),
      200,
    );
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    expect(await endpointRow(ep.id)).toMatchObject({
      enabled: true,
      disabledReason: null,
      failingSince: null,
    });
  });

  it("rotating the secret answers the new one and keeps the previous one signing for 24 hours", async () => {
    const t = await seedTenant();
    const ep = await createEndpoint(t.key);
    const before = Date.now();
    const rotated = await expectJson<Endpoint>(
      await asKey(t.key, "POST", `/gateway/v1/webhooks/${ep.id}/rotate-secret`),
      200,
    );
    expect(rotated.secret).toMatch(SECRET);
    expect(rotated.secret).not.toBe(ep.secret);
    const row = await endpointRow(ep.id);
    expect(row?.secret).toBe(rotated.secret);
    expect(row?.previousSecret).toBe(ep.secret);
    const until = row?.previousSecretUntil?.getTime() ?? 0;
    expect(until).toBeGreaterThanOrEqual(before + 24 * 3_600_000 - 5_000);
    expect(until).toBeLessThanOrEqual(Date.now() + 24 * 3_600_000 + 5_000);
    expect(rotated.previousSecretExpiresAt).toBe(row?.previousSecretUntil?.toISOString());

    const read = await expectJson<Endpoint>(await asKey(t.key, "GET", `/gateway/v1/webhooks/${ep.id}`), 200);
    expect(JSON.stringify(read)).not.toContain(rotated.secret as string);
    expect(JSON.stringify(read)).not.toContain(ep.secret as string);
  });

  it("a test send creates exactly one delivery, for that endpoint only, even when it is disabled", async () => {
    const t = await seedTenant();
    const target = await createEndpoint(t.key, { eventTypes: ["key.created"] });
    const other = await createEndpoint(t.key);
    await expectJson(
      await asKey(t.key, "PATCH", `/gateway/v1/webhooks/${target.id}`, { enabled: false }),
      200,
    );

    const sent = await expectJson<Delivery>(
      await asKey(t.key, "POST", `/gateway/v1/webhooks/${target.id}/test`),
      202,
    );
    expect(sent).toMatchObject({
      endpointId: target.id,
      eventType: "webhook.test",
      status: "pending",
      replays: 0,
    });

    const rows = await withDb((db) =>
      db
        .select({
          endpointId: webhookDeliveries.endpointId,
          type: webhookEvents.type,
          data: webhookEvents.data,
        })
        .from(webhookDeliveries)
        .innerJoin(webhookEvents, eq(webhookEvents.id, webhookDeliveries.eventId))
        .where(eq(webhookDeliveries.tenantId, t.tenantId)),
    );
    expect(rows).toEqual([
      {
        endpointId: target.id,
        type: "webhook.test",
        data: expect.objectContaining({ endpointId: target.id }),
      },
    ]);

    const log = await expectJson<Page<Delivery>>(
      await asKey(t.key, "GET", `/gateway/v1/webhooks/${target.id}/deliveries`),
      200,
    );
    expect(log.data.map((d) => d.id)).toEqual([sent.id]);
    const none = await expectJson<Page<Delivery>>(
      await asKey(t.key, "GET", `/gateway/v1/webhooks/${other.id}/deliveries`),
      200,
    );
    expect(none.data).toEqual([]);
  });

  it("the delivery log shows every attempt, newest delivery first, in pages", async () => {
    const t = await seedTenant();
    const ep = await createEndpoint(t.key);
    const older = await seedDelivery(ep, { status: "succeeded", failures: 1 });
    const newer = await seedDelivery(ep, { failures: 3 });

    const first = await expectJson<Page<Delivery>>(
      await asKey(t.key, "GET", `/gateway/v1/webhooks/${ep.id}/deliveries?limit=1`),
      200,
    );
    expect(first.data.map((d) => d.id)).toEqual([newer.deliveryId]);
    const [dead] = first.data;
    expect(dead).toMatchObject({
      eventId: newer.eventId,
      eventType: "key.created",
      status: "dead",
      attemptCount: 3,
      lastStatus: 500,
      lastError: "HTTP 500",
    });
    expect(dead?.attempts).toEqual([
      {
        attempt: 1,
        startedAt: expect.any(String),
        status: null,
        latencyMs: 40,
        responseExcerpt: null,
        error: "connection refused",
      },
      {
        attempt: 2,
        startedAt: expect.any(String),
        status: 500,
        latencyMs: 41,
        responseExcerpt: '{"error":"down 1"}',
        error: "HTTP 500",
      },
      {
        attempt: 3,
        startedAt: expect.any(String),
        status: 500,
        latencyMs: 42,
        responseExcerpt: '{"error":"down 2"}',
        error: "HTTP 500",
      },
    ]);
    expect(first.next_cursor).not.toBeNull();

    const second = await expectJson<Page<Delivery>>(
      await asKey(
        t.key,
        "GET",
        `/gateway/v1/webhooks/${ep.id}/deliveries?limit=1&cursor=${first.next_cursor}`,
      ),
      200,
    );
    expect(second.data.map((d) => d.id)).toEqual([older.deliveryId]);
    expect(second.next_cursor).toBeNull();
  });

  it("retry makes a dead delivery pending again with one more replay and its attempts unchanged", async () => {
    const t = await seedTenant();
    const ep = await createEndpoint(t.key);
    const { deliveryId } = await seedDelivery(ep, { failures: 2 });

    const retried = await expectJson<Delivery>(
      await asKey(t.key, "POST", `/gateway/v1/webhooks/${ep.id}/deliveries/${deliveryId}/retry`),
      202,
    );
    expect(retried).toMatchObject({ id: deliveryId, status: "pending", replays: 1, attemptCount: 2 });
    const row = await deliveryRow(deliveryId);
    expect(row).toMatchObject({ replays: 1, attempts: 2 });
    expect(row?.nextAttemptAt?.getTime()).toBeLessThanOrEqual(Date.now() + 1_000);

    // A succeeded delivery may be sent again too.
    const done = await seedDelivery(ep, { status: "succeeded", failures: 1 });
    const resent = await expectJson<Delivery>(
      await asKey(t.key, "POST", `/gateway/v1/webhooks/${ep.id}/deliveries/${done.deliveryId}/retry`),
      202,
    );
    expect(resent).toMatchObject({ status: "pending", replays: 1 });

    // Not while the endpoint is off: the engine would cancel it again at once.
    await expectJson(await asKey(t.key, "PATCH", `/gateway/v1/webhooks/${ep.id}`, { enabled: false }), 200);
    await expectProblem(
      await asKey(t.key, "POST", `/gateway/v1/webhooks/${ep.id}/deliveries/${deliveryId}/retry`),
      409,
      "conflict",
    );
    // Another endpoint's path does not reach this delivery.
    const other = await createEndpoint(t.key);
    await expectProblem(
      await asKey(t.key, "POST", `/gateway/v1/webhooks/${other.id}/deliveries/${deliveryId}/retry`),
      404,
      "not_found",
    );
  });

  it("another tenant gets 404 for an endpoint and a delivery that are not its own, on every route", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const ep = await createEndpoint(a.key);
    const { deliveryId } = await seedDelivery(ep);
    const routes: Array<[string, string, unknown?]> = [
      ["GET", `/gateway/v1/webhooks/${ep.id}`],
      ["PATCH", `/gateway/v1/webhooks/${ep.id}`, { url: receiver(), enabled: false }],
      ["DELETE", `/gateway/v1/webhooks/${ep.id}`],
      ["POST", `/gateway/v1/webhooks/${ep.id}/rotate-secret`],
      ["POST", `/gateway/v1/webhooks/${ep.id}/test`],
      ["GET", `/gateway/v1/webhooks/${ep.id}/deliveries`],
      ["POST", `/gateway/v1/webhooks/${ep.id}/deliveries/${deliveryId}/retry`],
    ];
    for (const [method, path, body] of routes) {
      const res = await asKey(b.key, method, path, body);
      expect({ route: `${method} ${path}`, status: res.status }).toEqual({
        route: `${method} ${path}`,
        status: 404,
      });
      await expectProblem(res, 404, "not_found");
    }
    // B's own endpoint cannot reach A's delivery either.
    const own = await createEndpoint(b.key);
    await expectProblem(
      await asKey(b.key, "POST", `/gateway/v1/webhooks/${own.id}/deliveries/${deliveryId}/retry`),
      404,
      "not_found",
    );
    const list = await expectJson<Page<Endpoint>>(await asKey(b.key, "GET", "/gateway/v1/webhooks"), 200);
    expect(list.data.map((e) => e.id)).toEqual([own.id]);

    // Nothing of A's changed.
    expect(await endpointRow(ep.id)).toMatchObject({
      url: ep.url,
      enabled: true,
      secret: ep.secret,
      previousSecret: null,
    });
    expect(await deliveryRow(deliveryId)).toMatchObject({ status: "dead", replays: 0 });
    const aDeliveries = await withDb((db) =>
      db.select().from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, ep.id)),
    );
    expect(aDeliveries).toHaveLength(1);
  });

  it("changes take a live admin-role key; member and test keys may read", async () => {
    const t = await seedTenant();
    const ep = await createEndpoint(t.key);
    const member = await createKey(t.tenantId, { role: "member" });
    const testAdmin = await createKey(t.tenantId, { role: "admin", env: "test" });
    for (const key of [member.key, testAdmin.key]) {
      await expectProblem(
        await asKey(key, "POST", "/gateway/v1/webhooks", { url: receiver() }),
        403,
        "forbidden",
      );
      await expectProblem(
        await asKey(key, "PATCH", `/gateway/v1/webhooks/${ep.id}`, { enabled: false }),
        403,
        "forbidden",
      );
      await expectProblem(await asKey(key, "DELETE", `/gateway/v1/webhooks/${ep.id}`), 403, "forbidden");
      await expectProblem(
        await asKey(key, "POST", `/gateway/v1/webhooks/${ep.id}/rotate-secret`),
        403,
        "forbidden",
      );
      await expectProblem(await asKey(key, "POST", `/gateway/v1/webhooks/${ep.id}/test`), 403, "forbidden");
      const list = await expectJson<Page<Endpoint>>(await asKey(key, "GET", "/gateway/v1/webhooks"), 200);
      expect(list.data.map((e) => e.id)).toEqual([ep.id]);
      await expectJson(await asKey(key, "GET", `/gateway/v1/webhooks/${ep.id}/deliveries`), 200);
    }
    expect(await endpointRow(ep.id)).toMatchObject({ enabled: true, secret: ep.secret });
  });

  it("refuses bad input with a 4xx problem naming the reason", async () => {
    const t = await seedTenant();
    const refusedUrls: Array<[string, string]> = [
      ["http://169.254.169.254/latest/meta-data/", "must not be a private, link-local or reserved address"],
      ["https://10.0.0.1/hooks", "must not be a private, link-local or reserved address"],
      ["http://[::ffff:192.168.0.1]/", "must not be a private, link-local or reserved address"],
      ["http://metadata.google.internal/", "must be a public host name"],
      ["https://intranet/hooks", "must be a fully qualified public host name"],
      ["https://user:pw@example.com/", "must not carry credentials"],
      ["ftp://example.com/", "must be an https:// URL"],
      ["not a url", "must be an absolute URL"],
    ];
    for (const [url, reason] of refusedUrls) {
      const body = await expectProblem(
        await asKey(t.key, "POST", "/gateway/v1/webhooks", { url }),
        400,
        "validation_failed",
      );
      expect({ url, errors: body.errors }).toEqual({ url, errors: [{ path: "url", message: reason }] });
    }
    const bad = [
      { url: receiver(), eventTypes: ["key.exploded"] },
      { url: receiver(), description: "x".repeat(201) },
      { url: receiver(), secret: "whsec_mine" },
      { url: 42 },
      {},
    ];
    for (const body of bad)
      await expectProblem(await asKey(t.key, "POST", "/gateway/v1/webhooks", body), 400, "validation_failed");
    await expectProblem(
      await asKey(t.key, "GET", "/gateway/v1/webhooks?cursor=nonsense"),
      400,
      "validation_failed",
    );

    const ep = await createEndpoint(t.key);
    const patch = await expectProblem(
      await asKey(t.key, "PATCH", `/gateway/v1/webhooks/${ep.id}`, { url: "https://172.16.0.1/" }),
      400,
      "validation_failed",
    );
    expect(patch.errors).toEqual([
      { path: "url", message: "must not be a private, link-local or reserved address" },
    ]);
    await expectProblem(
      await asKey(t.key, "PATCH", `/gateway/v1/webhooks/${ep.id}`, { eventTypes: ["nope"] }),
      400,
      "validation_failed",
    );
    expect((await endpointRow(ep.id))?.url).toBe(ep.url);
    await expectProblem(await asKey(t.key, "GET", "/gateway/v1/webhooks/whep_nope"), 404, "not_found");
    await expectProblem(
      await asKey(t.key, "POST", `/gateway/v1/webhooks/${ep.id}/deliveries/dlv_nope/retry`),
      404,
      "not_found",
    );
    const rows = await withDb((db) =>
      db
        .select({ n: sql<number>`count(*)::int` })
        .from(webhookEndpoints)
        .where(eq(webhookEndpoints.tenantId, t.tenantId)),
    );
    expect(rows[0]?.n).toBe(1);
  });

  it("a tenant has at most 20 endpoints", async () => {
    const t = await seedTenant();
    for (let i = 0; i < 20; i++)
      await expectJson(
        await admin("POST", `/admin/v1/tenants/${t.tenantId}/webhooks`, { url: receiver() }),
        201,
      );
    const body = await expectProblem(
      await asKey(t.key, "POST", "/gateway/v1/webhooks", { url: receiver() }),
      409,
      "conflict",
    );
    expect(body.detail).toBe("A tenant has at most 20 webhook endpoints; delete one first.");
  });

  it("concurrent creations never pass the cap", async () => {
    const t = await seedTenant();
    for (let i = 0; i < 17; i++)
      await expectJson(
        await admin("POST", `/admin/v1/tenants/${t.tenantId}/webhooks`, { url: receiver() }),
        201,
      );
    const results = await Promise.all(
      Array.from({ length: 6 }, () => asKey(t.key, "POST", "/gateway/v1/webhooks", { url: receiver() })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([201, 201, 201, 409, 409, 409]);
    const rows = await withDb((db) =>
      db
        .select({ n: sql<number>`count(*)::int` })
        .from(webhookEndpoints)
        .where(eq(webhookEndpoints.tenantId, t.tenantId)),
    );
    expect(rows[0]?.n).toBe(20);
  });
});

describe("webhook endpoints: the admin API and the dead-letter store", () => {
  it("the operator manages any tenant's endpoints", async () => {
    const t = await seedTenant();
    await expectProblem(
      await admin("POST", "/admin/v1/tenants/ten_nope/webhooks", { url: receiver() }),
      404,
      "not_found",
    );
    await expectProblem(await admin("GET", "/admin/v1/tenants/ten_nope/webhooks"), 404, "not_found");

    const created = await expectJson<Endpoint>(
      await admin("POST", `/admin/v1/tenants/${t.tenantId}/webhooks`, {
        url: receiver(),
        eventTypes: ["plan.changed"],
      }),
      201,
    );
    expect(created).toMatchObject({ tenantId: t.tenantId, eventTypes: ["plan.changed"] });
    expect(created.secret).toMatch(SECRET);

    const list = await expectJson<Page<Endpoint>>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/webhooks`),
      200,
    );
    expect(list.data.map((e) => e.id)).toEqual([created.id]);
    expect(list.data[0]).not.toHaveProperty("secret");
    // The tenant sees what the operator made.
    const mine = await expectJson<Page<Endpoint>>(await asKey(t.key, "GET", "/gateway/v1/webhooks"), 200);
    expect(mine.data.map((e) => e.id)).toEqual([created.id]);

    const read = await expectJson<Endpoint>(await admin("GET", `/admin/v1/webhooks/${created.id}`), 200);
    expect(read).not.toHaveProperty("secret");
    const patched = await expectJson<Endpoint>(
      await admin("PATCH", `/admin/v1/webhooks/${created.id}`, { description: "by the operator" }),
      200,
    );
    expect(patched.description).toBe("by the operator");
    await expectProblem(
      await admin("PATCH", `/admin/v1/webhooks/${created.id}`, { url: "https://169.254.169.254/" }),
      400,
      "validation_failed",
    );

    const rotated = await expectJson<Endpoint>(
      await admin("POST", `/admin/v1/webhooks/${created.id}/rotate-secret`),
      200,
    );
    expect(rotated.secret).toMatch(SECRET);
    expect((await endpointRow(created.id))?.previousSecret).toBe(created.secret);

    const sent = await expectJson<Delivery>(
      await admin("POST", `/admin/v1/webhooks/${created.id}/test`),
      202,
    );
    expect(sent).toMatchObject({ endpointId: created.id, eventType: "webhook.test" });
    const log = await expectJson<Page<Delivery>>(
      await admin("GET", `/admin/v1/webhooks/${created.id}/deliveries`),
      200,
    );
    expect(log.data.map((d) => d.id)).toEqual([sent.id]);

    await expectJson(await admin("DELETE", `/admin/v1/webhooks/${created.id}`), 200);
    for (const [method, path] of [
      ["GET", `/admin/v1/webhooks/${created.id}`],
      ["PATCH", `/admin/v1/webhooks/${created.id}`],
      ["DELETE", `/admin/v1/webhooks/${created.id}`],
      ["POST", `/admin/v1/webhooks/${created.id}/rotate-secret`],
      ["POST", `/admin/v1/webhooks/${created.id}/test`],
      ["GET", `/admin/v1/webhooks/${created.id}/deliveries`],
      ["POST", "/admin/v1/webhooks/deliveries/dlv_nope/retry"],
    ] as const)
      await expectProblem(
        await admin(method, path, method === "PATCH" ? { enabled: true } : undefined),
        404,
        "not_found",
      );
    // Its delivery log went with it.
    expect(await deliveryRow(sent.id)).toBeUndefined();
  });

  it("lists dead deliveries with their event, endpoint and attempts, and replays one", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const epA = await createEndpoint(a.key);
    const epB = await createEndpoint(b.key);
    const first = await seedDelivery(epA, { failures: 2 });
    const second = await seedDelivery(epA, { failures: 3 });
    await seedDelivery(epA, { status: "succeeded", failures: 1 });
    const ofB = await seedDelivery(epB);

    const page = await expectJson<Page<Delivery>>(
      await admin("GET", `/admin/v1/webhooks/dead-letters?tenant=${a.tenantId}`),
      200,
    );
    expect(page.data.map((d) => d.id)).toEqual([second.deliveryId, first.deliveryId]);
    expect(page.data[0]).toMatchObject({
      eventType: "key.created",
      endpointId: epA.id,
      endpointUrl: epA.url,
      status: "dead",
      attemptCount: 3,
      lastStatus: 500,
      lastError: "HTTP 500",
    });
    expect(page.data[0]?.attempts.map((x) => x.status)).toEqual([null, 500, 500]);
    const all = await expectJson<Page<Delivery>>(
      await admin("GET", "/admin/v1/webhooks/dead-letters?limit=200"),
      200,
    );
    expect(all.data.map((d) => d.id)).toEqual(
      expect.arrayContaining([first.deliveryId, second.deliveryId, ofB.deliveryId]),
    );

    const replayed = await expectJson<Delivery>(
      await admin("POST", `/admin/v1/webhooks/deliveries/${second.deliveryId}/retry`),
      202,
    );
    expect(replayed).toMatchObject({ id: second.deliveryId, status: "pending", replays: 1, attemptCount: 3 });
    expect(await deliveryRow(second.deliveryId)).toMatchObject({ replays: 1, attempts: 3 });
    const after = await expectJson<Page<Delivery>>(
      await admin("GET", `/admin/v1/webhooks/dead-letters?tenant=${a.tenantId}`),
      200,
    );
    expect(after.data.map((d) => d.id)).toEqual([first.deliveryId]);

    // Operator only.
    await expectProblem(await asKey(a.key, "GET", "/admin/v1/webhooks/dead-letters"), 401, "unauthorized");
  });
});

describe("webhook endpoints: the OpenAPI document", () => {
  it("documents every route and a webhooks entry per event type with the Standard Webhooks headers", async () => {
    const doc = await expectJson<{
      paths: Record<string, Record<string, unknown>>;
      webhooks: Record<
        string,
        {
          post: {
            requestBody: { content: Record<string, { schema: Record<string, unknown> }> };
            parameters: { name: string; in: string }[];
          };
        }
      >;
    }>(await gateway("/gateway/openapi.json"), 200);
    expect(Object.keys(doc.webhooks).sort()).toEqual([...EVENT_TYPES].sort());
    for (const type of EVENT_TYPES) {
      const post = doc.webhooks[type]?.post;
      const schema = post?.requestBody.content["application/json"]?.schema as {
        properties: Record<string, Record<string, unknown>>;
        required: string[];
      };
      expect(schema.required).toEqual(["type", "timestamp", "data"]);
      expect(schema.properties.type).toMatchObject({ type: "string", enum: [type] });
      expect(schema.properties.data).toMatchObject({ type: "object" });
      expect(post?.parameters.filter((p) => p.in === "header").map((p) => p.name)).toEqual([
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
      ]);
    }
    const threshold = doc.webhooks["usage.threshold.reached"]?.post.requestBody.content["application/json"]
      ?.schema as {
      properties: { data: { properties: Record<string, unknown> } };
    };
    expect(Object.keys(threshold.properties.data.properties)).toEqual(
      expect.arrayContaining(["window", "threshold", "period", "used", "limit"]),
    );

    expect(Object.keys(doc.paths["/gateway/v1/webhooks"] ?? {}).sort()).toEqual(["get", "post"]);
    expect(Object.keys(doc.paths["/gateway/v1/webhooks/{id}"] ?? {}).sort()).toEqual([
      "delete",
      "get",
      "patch",
    ]);
    for (const path of [
      "/gateway/v1/webhooks/{id}/rotate-secret",
      "/gateway/v1/webhooks/{id}/test",
      "/gateway/v1/webhooks/{id}/deliveries",
      "/gateway/v1/webhooks/{id}/deliveries/{deliveryId}/retry",
      "/admin/v1/tenants/{id}/webhooks",
      "/admin/v1/webhooks/{id}",
      "/admin/v1/webhooks/{id}/rotate-secret",
      "/admin/v1/webhooks/{id}/test",
      "/admin/v1/webhooks/{id}/deliveries",
      "/admin/v1/webhooks/deliveries/{deliveryId}/retry",
      "/admin/v1/webhooks/dead-letters",
    ])
      expect(doc.paths).toHaveProperty([path]);

    const docs = await gateway("/gateway/docs");
    expect(docs.status).toBe(200);
    const html = await docs.text();
    expect(html).toContain("/gateway/v1/webhooks/{id}/rotate-secret");
    expect(html).toContain('<a href="#op-post-usage-threshold-reached">');
    for (const type of EVENT_TYPES) expect(html).toContain(`<code class="op-path">${type}</code>`);
  });
});

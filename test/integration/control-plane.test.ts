/**
 * The control plane as a good API: Idempotency-Key on the creating POSTs (admin and tenant), cursor
 * pagination on every list, tenant overrides as a JSON Merge Patch, keys that cannot expire in the past.
 */
import { env } from "cloudflare:workers";
import { and, eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { fingerprint } from "../../durable-objects/idempotency";
import { apiKeys, idempotencyKeys, plans } from "../../schema";
import { idempotencyKeyHash } from "../../workers/api/idempotency";
import { openDb } from "../../workers/shared/db";
import {
  admin,
  bearer,
  createKey,
  createPlan,
  expectJson,
  gateway,
  seedTenant,
  uniq,
} from "../support/gateway";

interface Key {
  id: string;
  tenantId: string;
  key?: string;
  env: string;
  expiresAt: string | null;
  rotatedFromId: string | null;
}
interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

/** An admin call with an Idempotency-Key. */
function adminIdem(method: string, path: string, key: string, body?: unknown): Promise<Response> {
  return gateway(path, {
    method,
    headers: {
      authorization: `Bearer ${env.ADMIN_TOKEN}`,
      "content-type": "application/json",
      "idempotency-key": key,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** A tenant API call with the tenant's key and, optionally, an Idempotency-Key. */
function asTenant(apiKey: string, method: string, path: string, body?: unknown, idem?: string) {
  return gateway(path, {
    method,
    headers: {
      ...bearer(apiKey),
      "content-type": "application/json",
      ...(idem === undefined ? {} : { "idempotency-key": idem }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Asserts the whole problem+json body. */
async function expectProblem(
  res: Response,
  status: number,
  expected: { code: string; title: string; detail: string; errors?: { path: string; message: string }[] },
): Promise<void> {
  const text = await res.text();
  expect({ status: res.status, contentType: res.headers.get("content-type") }).toEqual({
    status,
    contentType: "application/problem+json",
  });
  expect(JSON.parse(text)).toEqual({
    type: `https://gateway.dev/problems/${expected.code}`,
    title: expected.title,
    status,
    detail: expected.detail,
    code: expected.code,
    request_id: res.headers.get("x-request-id"),
    ...(expected.errors ? { errors: expected.errors } : {}),
  });
}

async function allKeysOf(tenantId: string): Promise<Key[]> {
  return (
    await expectJson<Page<Key>>(await admin("GET", `/admin/v1/tenants/${tenantId}/keys?limit=200`), 200)
  ).data;
}

async function withDb<T>(fn: (db: ReturnType<typeof openDb>["db"]) => Promise<T>): Promise<T> {
  const handle = openDb(env);
  try {
    return await fn(handle.db);
  } finally {
    await handle.close();
  }
}

describe("Idempotency-Key on the control plane", () => {
  it("replays a tenant create: one tenant, the same key id and plaintext, nothing stored in the clear", async () => {
    const plan = await createPlan();
    const slug = `idem-${uniq()}`;
    const idem = `create-${uniq()}`;
    const body = { slug, name: "Idem", planId: plan.id };
    const first = await adminIdem("POST", "/admin/v1/tenants", idem, body);
    const firstText = await first.text();
    expect(first.status).toBe(201);
    expect(first.headers.get("idempotent-replayed")).toBeNull();

    const again = await adminIdem("POST", "/admin/v1/tenants", idem, body);
    expect(again.status).toBe(201);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(again.headers.get("content-type")).toBe(first.headers.get("content-type"));
    expect(again.headers.get("x-request-id")).not.toBe(first.headers.get("x-request-id"));
    expect(await again.text()).toBe(firstText);

    const created = JSON.parse(firstText) as { tenant: { id: string }; key: Key };
    const bySlug = await expectJson<Page<{ id: string }>>(
      await admin("GET", `/admin/v1/tenants?slug=${slug}`),
      200,
    );
    expect(bySlug.data.map((t) => t.id)).toEqual([created.tenant.id]);
    expect((await allKeysOf(created.tenant.id)).map((k) => k.id)).toEqual([created.key.id]);
    // The replayed plaintext is the working key.
    expect((await gateway("/v1/idem", { headers: bearer(created.key.key as string) })).status).toBe(200);

    const keyHash = await idempotencyKeyHash(idem);
    const rows = await withDb((db) =>
      db
        .select()
        .from(idempotencyKeys)
        .where(and(eq(idempotencyKeys.scope, "admin"), eq(idempotencyKeys.keyHash, keyHash))),
    );
    expect(rows).toHaveLength(1);
    const stored = JSON.stringify(rows);
    expect(stored).not.toContain(created.key.key);
    expect(stored).not.toContain(idem);
    expect(stored).not.toContain(slug);
    expect(rows[0]?.state).toBe("done");
  });

  it("replays an admin key create and a rotation: a retry never makes a second key", async () => {
    const t = await seedTenant();
    const idem = uniq();
    const input = { env: "test", name: "ci" };
    const path = `/admin/v1/tenants/${t.tenantId}/keys`;
    const first = await expectJson<Key>(await adminIdem("POST", path, idem, input), 201);
    const replayed = await adminIdem("POST", path, `"${idem}"`, input); // the draft's quoted form is the same key
    expect(replayed.headers.get("idempotent-replayed")).toBe("true");
    expect(await expectJson<Key>(replayed, 201)).toEqual(first);
    expect((await allKeysOf(t.tenantId)).map((k) => k.id).sort()).toEqual([t.keyId, first.id].sort());

    const rotateIdem = uniq();
    const rotated = await expectJson<{ key: Key; previous: Key }>(
      await adminIdem("POST", `/admin/v1/keys/${t.keyId}/rotate`, rotateIdem, { gracePeriodSeconds: 60 }),
      201,
    );
    const rerotated = await adminIdem("POST", `/admin/v1/keys/${t.keyId}/rotate`, rotateIdem, {
      gracePeriodSeconds: 60,
    });
    expect(rerotated.headers.get("idempotent-replayed")).toBe("true");
    expect(await expectJson(rerotated, 201)).toEqual(rotated);
    const keys = await allKeysOf(t.tenantId);
    expect(keys).toHaveLength(3);
    expect(keys.filter((k) => k.rotatedFromId === t.keyId).map((k) => k.id)).toEqual([rotated.key.id]);
    expect((await gateway("/v1/rotated", { headers: bearer(rotated.key.key as string) })).status).toBe(200);
  });

  it("replays a tenant's own key create, scoped to that tenant", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const idem = uniq();
    const input = { env: "test", name: "from-tenant" };
    const first = await expectJson<Key>(await asTenant(a.key, "POST", "/gateway/v1/keys", input, idem), 201);
    const again = await asTenant(a.key, "POST", "/gateway/v1/keys", input, idem);
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await expectJson<Key>(again, 201)).toEqual(first);
    expect(await allKeysOf(a.tenantId)).toHaveLength(2);

    // Tenant B with the same Idempotency-Key and body gets its own key, never A's response.
    const other = await asTenant(b.key, "POST", "/gateway/v1/keys", input, idem);
    expect(other.headers.get("idempotent-replayed")).toBeNull();
    const otherKey = await expectJson<Key>(other, 201);
    expect(otherKey.tenantId).toBe(b.tenantId);
    expect(otherKey.id).not.toBe(first.id);

    // The admin scope is apart from the tenant's: same key on an admin create is a new request…
    const viaAdmin = await adminIdem("POST", `/admin/v1/tenants/${a.tenantId}/keys`, idem, input);
    expect(viaAdmin.headers.get("idempotent-replayed")).toBeNull();
    expect((await expectJson<Key>(viaAdmin, 201)).id).not.toBe(first.id);
    // …and shared by every admin route: the same key on another admin path is a mismatch.
    await expectProblem(await adminIdem("POST", `/admin/v1/tenants/${b.tenantId}/keys`, idem, input), 422, {
      code: "idempotency_key_mismatch",
      title: "Idempotency key reused with a different request",
      detail: "This Idempotency-Key was used with a different request (method, path or body).",
    });
  });

  it("refuses a different body with the same key (422) and a malformed key (400)", async () => {
    const t = await seedTenant();
    const path = `/admin/v1/tenants/${t.tenantId}/keys`;
    const idem = uniq();
    await expectJson(await adminIdem("POST", path, idem, { name: "one" }), 201);
    await expectProblem(await adminIdem("POST", path, idem, { name: "two" }), 422, {
      code: "idempotency_key_mismatch",
      title: "Idempotency key reused with a different request",
      detail: "This Idempotency-Key was used with a different request (method, path or body).",
    });
    for (const bad of ['"unterminated', "x".repeat(256), '""', "a b"]) {
      await expectProblem(await adminIdem("POST", path, bad, { name: "bad" }), 400, {
        code: "bad_request",
        title: "Bad request",
        detail: "Idempotency-Key must be 1-255 printable ASCII characters, optionally quoted.",
      });
    }
    await expectProblem(await asTenant(t.key, "POST", "/gateway/v1/keys", { env: "test" }, '"open'), 400, {
      code: "bad_request",
      title: "Bad request",
      detail: "Idempotency-Key must be 1-255 printable ASCII characters, optionally quoted.",
    });
    expect(await allKeysOf(t.tenantId)).toHaveLength(2);
  });

  it("answers 409 while the first request is in flight, and lets a retry take over a lapsed lease", async () => {
    const t = await seedTenant();
    const idem = uniq();
    const path = `/admin/v1/tenants/${t.tenantId}/keys`;
    const body = { name: "held" };
    const now = Date.now();
    await withDb(async (db) =>
      db.insert(idempotencyKeys).values({
        scope: "admin",
        keyHash: await idempotencyKeyHash(idem),
        fingerprint: await fingerprint(
          "POST",
          path,
          new TextEncoder().encode(JSON.stringify(body)).buffer as ArrayBuffer,
        ),
        leaseToken: "someone-else",
        leaseUntil: new Date(now + 60_000),
        expiresAt: new Date(now + 86_400_000),
      }),
    );
    const busy = await adminIdem("POST", path, idem, body);
    expect(busy.headers.get("retry-after")).toBe("1");
    await expectProblem(busy, 409, {
      code: "idempotency_key_in_use",
      title: "Idempotency key in use",
      detail: "A request with this Idempotency-Key is still in progress. Retry after it completes.",
    });
    expect(await allKeysOf(t.tenantId)).toHaveLength(1);

    // The holder died: once its lease lapses, a retry runs (once) and is recorded.
    await withDb(async (db) =>
      db
        .update(idempotencyKeys)
        .set({ leaseUntil: new Date(now - 1) })
        .where(eq(idempotencyKeys.keyHash, await idempotencyKeyHash(idem))),
    );
    const created = await expectJson<Key>(await adminIdem("POST", path, idem, body), 201);
    const replay = await adminIdem("POST", path, idem, body);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect((await expectJson<Key>(replay, 201)).id).toBe(created.id);
    expect(await allKeysOf(t.tenantId)).toHaveLength(2);
  });

  it("treats a record past its 24 h as gone, even with another request", async () => {
    const t = await seedTenant();
    const idem = uniq();
    const path = `/admin/v1/tenants/${t.tenantId}/keys`;
    const old = Date.now() - 86_400_000 - 1;
    await withDb(async (db) =>
      db.insert(idempotencyKeys).values({
        scope: "admin",
        keyHash: await idempotencyKeyHash(idem),
        fingerprint: "another request",
        state: "done",
        leaseToken: "old",
        leaseUntil: new Date(old),
        expiresAt: new Date(old + 86_400_000),
        responseStatus: 201,
        responseHeaders: [],
        responseBody: "",
      }),
    );
    const res = await adminIdem("POST", path, idem, { name: "fresh" });
    expect(res.headers.get("idempotent-replayed")).toBeNull();
    expect((await expectJson<Key>(res, 201)).tenantId).toBe(t.tenantId);
  });

  it("creates once for 8 concurrent identical requests; the rest replay or get 409", async () => {
    const t = await seedTenant();
    const idem = uniq();
    const path = `/admin/v1/tenants/${t.tenantId}/keys`;
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => adminIdem("POST", path, idem, { env: "test", name: "race" })),
    );
    const ids = new Set<string>();
    let fresh = 0;
    for (const res of answers) {
      if (res.status === 409) {
        expect((await res.json<{ code: string }>()).code).toBe("idempotency_key_in_use");
        continue;
      }
      ids.add((await expectJson<Key>(res, 201)).id);
      if (res.headers.get("idempotent-replayed") === null) fresh++;
    }
    expect({ fresh, distinctIds: ids.size }).toEqual({ fresh: 1, distinctIds: 1 });
    expect(await allKeysOf(t.tenantId)).toHaveLength(2);
  });

  it("prunes expired records when it claims a new key", async () => {
    const t = await seedTenant();
    const stale = `stale-${uniq()}`;
    const staleHash = await idempotencyKeyHash(stale);
    const old = Date.now() - 2 * 86_400_000;
    await withDb(async (db) =>
      db.insert(idempotencyKeys).values({
        scope: "admin",
        keyHash: staleHash,
        fingerprint: "old",
        leaseToken: "old",
        leaseUntil: new Date(old),
        expiresAt: new Date(old + 86_400_000),
      }),
    );
    await expectJson(await adminIdem("POST", `/admin/v1/tenants/${t.tenantId}/keys`, uniq(), {}), 201);
    const left = await withDb((db) =>
      db.select().from(idempotencyKeys).where(eq(idempotencyKeys.keyHash, staleHash)),
    );
    expect(left).toEqual([]);
  });

  it("releases the key on a 5xx, so the retry creates the tenant once", async () => {
    const plan = await createPlan();
    const slug = `idem5-${uniq()}`;
    const idem = uniq();
    const body = { slug, name: "Flaky", planId: plan.id };
    // The first attempt fails inside the server (Postgres refuses this slug once); Stripe being down
    // no longer fails a create (the billing sync catches up), so it cannot be the 5xx here.
    const block = `idem5_block_${uniq().replace(/-/g, "")}`;
    await withDb((db) =>
      db.execute(sql.raw(`ALTER TABLE tenants ADD CONSTRAINT ${block} CHECK (slug <> '${slug}') NOT VALID`)),
    );
    let failed: Response;
    try {
      failed = await adminIdem("POST", "/admin/v1/tenants", idem, body);
    } finally {
      await withDb((db) => db.execute(sql.raw(`ALTER TABLE tenants DROP CONSTRAINT ${block}`)));
    }
    expect(failed.status).toBeGreaterThanOrEqual(500);
    const retried = await adminIdem("POST", "/admin/v1/tenants", idem, body);
    expect(retried.headers.get("idempotent-replayed")).toBeNull();
    const created = await expectJson<{ tenant: { id: string } }>(retried, 201);
    const replay = await adminIdem("POST", "/admin/v1/tenants", idem, body);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");
    expect((await expectJson<{ tenant: { id: string } }>(replay, 201)).tenant.id).toBe(created.tenant.id);
  });

  it("documents the header on all four routes in the OpenAPI document", async () => {
    const doc = await expectJson<{
      paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>>;
    }>(await gateway("/gateway/openapi.json"), 200);
    for (const [path, method] of [
      ["/admin/v1/tenants", "post"],
      ["/admin/v1/tenants/{id}/keys", "post"],
      ["/admin/v1/keys/{id}/rotate", "post"],
      ["/gateway/v1/keys", "post"],
    ] as const) {
      expect(doc.paths[path]?.[method]?.parameters).toEqual(
        expect.arrayContaining([expect.objectContaining({ name: "idempotency-key", in: "header" })]),
      );
    }
  });
});

describe("cursor pagination", () => {
  /** Walks every page of `path` with `limit`, calling `between` after the first page. */
  async function walk<T extends { id: string }>(
    get: (query: string) => Promise<Response>,
    limit: number,
    between: () => Promise<void> = async () => {},
  ): Promise<{ ids: string[]; pages: number }> {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page: Page<T> = await expectJson<Page<T>>(await get(query), 200);
      expect(page.data.length).toBeLessThanOrEqual(limit);
      ids.push(...page.data.map((r) => r.id));
      cursor = page.next_cursor;
      if (++pages === 1) await between();
    } while (cursor !== null);
    return { ids, pages };
  }

  it("pages through a tenant's keys newest first, without repeats or gaps while keys are created", async () => {
    const t = await seedTenant();
    const made: string[] = [t.keyId];
    for (let i = 0; i < 5; i++) made.push((await createKey(t.tenantId, { env: "test" })).id);
    let late = "";
    const { ids, pages } = await walk(
      (q) => admin("GET", `/admin/v1/tenants/${t.tenantId}/keys?${q}`),
      2,
      async () => {
        late = (await createKey(t.tenantId, { env: "test" })).id;
      },
    );
    expect(pages).toBe(3);
    // Newest first: the key created after page 1 sorts before it, so it is not shown, and nothing repeats.
    expect(ids).toEqual([...made].reverse());
    expect(ids).not.toContain(late);

    // The tenant's own view pages the same way, under row-level security.
    const own = await walk((q) => gateway(`/gateway/v1/keys?${q}`, { headers: bearer(t.key) }), 4);
    expect(own.ids).toEqual([late, ...made.slice().reverse()]);
    expect(own.pages).toBe(2);
  });

  it("pages through plans and tenants oldest first; rows created meanwhile come once, at the end", async () => {
    for (let i = 0; i < 4; i++) await createPlan(); // at least two pages of 3
    const before = await walk((q) => admin("GET", `/admin/v1/plans?${q}`), 200);
    let late = "";
    const { ids } = await walk(
      (q) => admin("GET", `/admin/v1/plans?${q}`),
      3,
      async () => {
        late = (await createPlan()).id;
      },
    );
    expect(ids).toEqual([...before.ids, late]);

    const a = await seedTenant();
    const tenants = await walk((q) => admin("GET", `/admin/v1/tenants?${q}`), 2);
    expect(new Set(tenants.ids).size).toBe(tenants.ids.length);
    expect(tenants.ids.at(-1)).toBe(a.tenantId);
  });

  it("keeps rows created in the same millisecond apart (positions to the microsecond)", async () => {
    // Before every other plan, three plans 100 µs apart: one JS millisecond.
    const ids = [`plan_us_${uniq()}`, `plan_us_${uniq()}`, `plan_us_${uniq()}`].sort().reverse();
    await withDb(async (db) => {
      for (const [i, id] of ids.entries()) {
        await db.insert(plans).values({
          id,
          name: id,
          burstCapacity: 1,
          refillTokens: 1,
          refillPeriodSeconds: 1,
          createdAt: sql`${`2000-01-01T00:00:00.000${i + 1}00Z`}::timestamptz` as unknown as Date,
        });
      }
    });
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < 3; i++) {
      const url: string = `/admin/v1/plans?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
      const page: Page<{ id: string }> = await expectJson<Page<{ id: string }>>(await admin("GET", url), 200);
      seen.push(...page.data.map((p) => p.id));
      cursor = page.next_cursor;
    }
    // Ordered by time, not id (the ids were made to sort the other way).
    expect(seen).toEqual(ids);
  });

  it("defaults to 50, allows 200, and refuses bad limits and cursors with 400", async () => {
    const t = await seedTenant();
    const first = await expectJson<Page<Key>>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/keys`),
      200,
    );
    expect(first).toEqual({ data: [expect.objectContaining({ id: t.keyId })], next_cursor: null });
    // 55 more keys (straight into Postgres: only their listing matters here) → 50, then 6.
    await withDb(async (db) =>
      db.insert(apiKeys).values(
        Array.from({ length: 55 }, (_, i) => ({
          id: `key_bulk_${uniq()}_${i}`,
          tenantId: t.tenantId,
          hash: `bulk-${uniq()}-${i}`,
          prefix: "gw_test_bulk",
          last4: "0000",
          env: "test" as const,
        })),
      ),
    );
    const page1 = await expectJson<Page<Key>>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/keys`),
      200,
    );
    expect(page1.data).toHaveLength(50);
    const page2 = await expectJson<Page<Key>>(
      await admin(
        "GET",
        `/admin/v1/tenants/${t.tenantId}/keys?cursor=${encodeURIComponent(page1.next_cursor as string)}`,
      ),
      200,
    );
    expect(page2.data).toHaveLength(6);
    expect(page2.next_cursor).toBeNull();
    expect(await allKeysOf(t.tenantId)).toHaveLength(56);
    const plans = await expectJson<Page<{ id: string }>>(await admin("GET", "/admin/v1/plans"), 200);
    expect(plans.data.length).toBeLessThanOrEqual(50);
    await expectJson(await admin("GET", "/admin/v1/plans?limit=200"), 200);

    for (const limit of ["0", "201", "ten", "1.5"]) {
      const res = await admin("GET", `/admin/v1/plans?limit=${limit}`);
      const body = await expectJson<{ code: string; errors: { path: string }[] }>(res, 400);
      expect(body.code).toBe("validation_failed");
      expect(body.errors.map((e) => e.path)).toEqual(["limit"]);
    }
    await createPlan(); // at least two plans, so a page of 1 has a next_cursor
    const plansPage = await expectJson<Page<{ id: string }>>(
      await admin("GET", "/admin/v1/plans?limit=1"),
      200,
    );
    const plansCursor = plansPage.next_cursor as string;
    expect(plansCursor).toEqual(expect.any(String));
    const malformed = {
      code: "validation_failed",
      title: "Validation failed",
      detail: "The cursor is not one this list returned.",
      errors: [{ path: "cursor", message: "malformed cursor" }],
    };
    for (const cursor of ["garbage!", "e30", btoa('["plans","1x","p"]'), plansCursor]) {
      await expectProblem(
        await admin("GET", `/admin/v1/tenants?cursor=${encodeURIComponent(cursor)}`),
        400,
        malformed,
      );
    }
    await expectProblem(
      await gateway("/gateway/v1/keys?cursor=nope", { headers: bearer(t.key) }),
      400,
      malformed,
    );
  });

  it("never shows another tenant's keys, whatever the cursor", async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    await createKey(a.tenantId, { env: "test" });
    const pageA = await expectJson<Page<Key>>(
      await gateway("/gateway/v1/keys?limit=1", { headers: bearer(a.key) }),
      200,
    );
    const seenByB = await expectJson<Page<Key>>(
      await gateway(`/gateway/v1/keys?cursor=${encodeURIComponent(pageA.next_cursor as string)}`, {
        headers: bearer(b.key),
      }),
      200,
    );
    expect(seenByB.data.every((k) => k.tenantId === b.tenantId)).toBe(true);
  });
});

describe("tenant overrides and key expiry", () => {
  it("merges overrides as a JSON Merge Patch: set, null removes, absent stays", async () => {
    const plan = await createPlan({ burstCapacity: 1000 });
    const created = await expectJson<{ tenant: { id: string }; key: Key }>(
      await admin("POST", "/admin/v1/tenants", {
        slug: `merge-${uniq()}`,
        name: "Merge",
        planId: plan.id,
        overrides: { burstCapacity: 5, dailyQuota: 100 },
      }),
      201,
    );
    const id = created.tenant.id;
    const patch = async (body: unknown) =>
      (
        await expectJson<{ overrides: Record<string, unknown> }>(
          await admin("PATCH", `/admin/v1/tenants/${id}`, body),
          200,
        )
      ).overrides;

    expect(await patch({ overrides: { refillTokens: 7 } })).toEqual({
      burstCapacity: 5,
      dailyQuota: 100,
      refillTokens: 7,
    });
    // The edge got the merged limits, not just the patch: the burst is still the override's 5.
    const proxied = await gateway("/v1/merged", { headers: bearer(created.key.key as string) });
    expect(proxied.status).toBe(200);
    expect(proxied.headers.get("ratelimit-policy")).toContain('"burst";q=5;');

    expect(await patch({ name: "Renamed" })).toEqual({ burstCapacity: 5, dailyQuota: 100, refillTokens: 7 });
    expect(await patch({ overrides: { dailyQuota: null, burstCapacity: 6 } })).toEqual({
      burstCapacity: 6,
      refillTokens: 7,
    });
    expect(await patch({ overrides: null })).toEqual({});
    const back = await gateway("/v1/merged", { headers: bearer(created.key.key as string) });
    expect(back.headers.get("ratelimit-policy")).toContain('"burst";q=1000;');

    const bad = await admin("PATCH", `/admin/v1/tenants/${id}`, { overrides: { burstCapacity: 0 } });
    expect((await expectJson<{ code: string }>(bad, 400)).code).toBe("validation_failed");
  });

  it("refuses a key that expires in the past with 400 validation_failed, on both APIs", async () => {
    const t = await seedTenant();
    const past = new Date(Date.now() - 60_000).toISOString();
    const expected = {
      code: "validation_failed",
      title: "Validation failed",
      detail: "The request is invalid.",
      errors: [{ path: "expiresAt", message: "must be in the future" }],
    };
    await expectProblem(
      await admin("POST", `/admin/v1/tenants/${t.tenantId}/keys`, { expiresAt: past }),
      400,
      expected,
    );
    await expectProblem(
      await asTenant(t.key, "POST", "/gateway/v1/keys", { expiresAt: past }),
      400,
      expected,
    );
    expect(await allKeysOf(t.tenantId)).toHaveLength(1);
    const future = new Date(Date.now() + 3_600_000).toISOString();
    expect(
      (
        await expectJson<Key>(
          await admin("POST", `/admin/v1/tenants/${t.tenantId}/keys`, { expiresAt: future }),
          201,
        )
      ).expiresAt,
    ).toBe(future);
  });
});

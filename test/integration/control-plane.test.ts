/**
 * The control plane as a good API: cursor pagination on every list, tenant overrides as a JSON Merge
 * Patch, keys that cannot expire in the past.
 */
import { describe, expect, it } from "vitest";
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

  it("defaults to 50, allows 200, and refuses bad limits and cursors with 400", async () => {
    const t = await seedTenant();
    const first = await expectJson<Page<Key>>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/keys`),
      200,
    );
    expect(first).toEqual({ data: [expect.objectContaining({ id: t.keyId })], next_cursor: null });
    const plans = await expectJson<Page<{ id: string }>>(await admin("GET", "/admin/v1/plans"), 200);
    expect(plans.data.length).toBeLessThanOrEqual(50);
    await expectJson(await admin("GET", "/admin/v1/plans?limit=200"), 200);

    for (const limit of ["0", "201", "ten", "1.5"]) {
      const res = await admin("GET", `/admin/v1/plans?limit=${limit}`);
      const body = await expectJson<{ code: string; errors: { path: string }[] }>(res, 400);
      expect(body.code).toBe("validation_failed");
      expect(body.errors.map((e) => e.path)).toEqual(["limit"]);
    }
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

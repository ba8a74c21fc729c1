/**
 * Concurrent queries each get their own answer while another connection holds a transaction — the
 * cause of the old "No such tenant" flake of the 8-concurrent-creates test: on the embedded PGlite,
 * queries queued behind a transaction were run message by message in turn and bound each other's
 * statements (dev/pglite-batches.ts). Against a real PostgreSQL this holds trivially.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { admin, expectJson, gateway, seedTenant, uniq } from "../support/gateway";

function createKeyOnce(tenantId: string, idem: string): Promise<Response> {
  return gateway(`/admin/v1/tenants/${tenantId}/keys`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${env.ADMIN_TOKEN}`,
      "content-type": "application/json",
      "idempotency-key": idem,
    },
    body: JSON.stringify({ env: "test", name: "race" }),
  });
}

/** "201 <key id>", "409", or the status with the problem's detail ("404 No such tenant." was the flake). */
async function describe201or409(res: Response): Promise<string> {
  const body = await res.json<{ id?: string; detail?: string }>();
  if (res.status === 201) return `201 ${body.id}`;
  return res.status === 409 ? "409" : `${res.status} ${body.detail}`;
}

describe("concurrent queries on the shared Postgres", () => {
  it("8 identical key creates racing two tenant creates (transactions): one key, every answer 201 or 409", async () => {
    const t = await seedTenant();
    const idem = uniq();
    // The tenant creates hold transactions on their connections while the key creates queue up.
    const [answers] = await Promise.all([
      Promise.all(Array.from({ length: 8 }, () => createKeyOnce(t.tenantId, idem))),
      Promise.all([seedTenant(), seedTenant()]),
    ]);
    const outcome = await Promise.all(answers.map(describe201or409));
    const created = new Set(outcome.filter((o) => o.startsWith("201 ")));
    expect({ created: created.size, others: outcome.filter((o) => !/^(201 |409$)/.test(o)) }).toEqual({
      created: 1,
      others: [],
    });
    const keys = await expectJson<{ data: unknown[] }>(
      await admin("GET", `/admin/v1/tenants/${t.tenantId}/keys?limit=200`),
      200,
    );
    expect(keys.data).toHaveLength(2);
  }, 30_000); // one round, ~5 s, most of it the file's first request loading the Worker (more on a busy machine)
});

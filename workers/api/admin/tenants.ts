/**
 * `/admin/v1/tenants`: create (returns the first key, once), list, read, update plan/limits/status.
 * Every change is projected into KV in the same request.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { tenants } from "../../../schema";
import { tenantCreated, tenantUpdated } from "../../audit/details";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { adminScope, idempotent } from "../idempotency";
import { keyset, PageQuery, pageOf } from "../pagination";
import {
  CreatedKeySchema,
  IdempotencyHeaders,
  IdParam,
  json,
  keyOut,
  problemResponses,
  replayedHeaders,
  adminSecurity as security,
  TenantInput,
  TenantPatch,
  TenantSchema,
  tenantOut,
  text,
} from "../schemas";
import { requirePlan, updateTenant } from "../tenant-changes";
import { createTenant } from "../tenant-create";

const tags = ["Admin: tenants"];

const list = createRoute({
  method: "get",
  path: "/admin/v1/tenants",
  tags,
  security,
  request: { query: PageQuery.extend({ slug: text().max(64).optional() }) },
  responses: {
    200: { description: "Tenants, oldest first", ...json(pageOf(TenantSchema)) },
    ...problemResponses(400, 401),
  },
});

const create = createRoute({
  method: "post",
  path: "/admin/v1/tenants",
  tags,
  security,
  middleware: [idempotent(adminScope)] as const,
  request: { headers: IdempotencyHeaders, body: { required: true, ...json(TenantInput) } },
  responses: {
    201: {
      description:
        "Created, with its first live key (shown once, and in a replay of the same Idempotency-Key)",
      headers: replayedHeaders,
      ...json(z.object({ tenant: TenantSchema, key: CreatedKeySchema })),
    },
    ...problemResponses(400, 401, 409, 422, 503),
  },
});

const read = createRoute({
  method: "get",
  path: "/admin/v1/tenants/{id}",
  tags,
  security,
  request: { params: IdParam },
  responses: { 200: { description: "The tenant", ...json(TenantSchema) }, ...problemResponses(401, 404) },
});

const update = createRoute({
  method: "patch",
  path: "/admin/v1/tenants/{id}",
  tags,
  security,
  request: { params: IdParam, body: { required: true, ...json(TenantPatch) } },
  description:
    "Fields sent change, absent fields stay. `overrides` is merged as a JSON Merge Patch (RFC 7396): a field set to null goes back to the plan's value; `overrides: null` removes them all.",
  responses: { 200: { description: "Updated", ...json(TenantSchema) }, ...problemResponses(400, 401, 404) },
});

export function registerAdminTenants(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => {
    const { slug, ...query } = c.req.valid("query");
    const page = keyset("tenants", tenants, query, "asc");
    const rows = await c.var.db
      .select({ row: tenants, position: page.position })
      .from(tenants)
      .where(and(slug === undefined ? undefined : eq(tenants.slug, slug), page.where))
      .orderBy(...page.orderBy)
      .limit(page.take);
    return c.json(
      page.page(rows, tenantOut, (t) => t.id),
      200,
    );
  });

  app.openapi(create, async (c) => {
    const input = c.req.valid("json");
    const db = c.var.db;
    const plan = await requirePlan(db, input.planId);
    const existing = await db.query.tenants.findFirst({ where: eq(tenants.slug, input.slug) });
    if (existing) throw new GatewayError("conflict", `A tenant with slug '${input.slug}' already exists.`);
    const made = await createTenant(c.env, db, plan, input, {
      env: "live",
      name: "default",
      role: "admin",
    });
    if (!made) throw new GatewayError("conflict", `A tenant with slug '${input.slug}' already exists.`);
    c.set("audit", tenantCreated(made));
    return c.json(
      { tenant: tenantOut(made.tenant), key: { ...keyOut(made.key.row), key: made.key.plaintext } },
      201,
    );
  });

  app.openapi(read, async (c) => {
    const row = await c.var.db.query.tenants.findFirst({ where: eq(tenants.id, c.req.valid("param").id) });
    if (!row) throw new GatewayError("not_found", "No such tenant.");
    return c.json(tenantOut(row), 200);
  });

  app.openapi(update, async (c) => {
    const { id } = c.req.valid("param");
    // Read before the service's own transaction: a concurrent change in between shows in neither.
    const before = await c.var.db.query.tenants.findFirst({ where: eq(tenants.id, id) });
    const row = await updateTenant(c.env, c.var.db, id, c.req.valid("json"));
    c.set("audit", tenantUpdated(before, row));
    return c.json(tenantOut(row), 200);
  });
}

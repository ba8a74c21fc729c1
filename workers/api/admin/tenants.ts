/**
 * `/admin/v1/tenants`: create (returns the first key, once), list, read, update plan/limits/status.
 * Every change is projected into KV in the same request.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { and, eq, type SQL, sql } from "drizzle-orm";
import { type Plan, plans, tenants } from "../../../schema";
import { enqueueBillingSync, syncBilling } from "../../billing/subscription-sync";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import type { Db } from "../../shared/db";
import { adminScope, idempotent } from "../idempotency";
import { keyset, PageQuery, pageOf } from "../pagination";
import { projectTenant } from "../projection";
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

/**
 * The SQL that merges an overrides patch (RFC 7396) into the stored object in the same UPDATE, so two
 * concurrent PATCHes of different fields both stick. Overrides are flat, so a flat merge is the RFC's.
 */
function mergeOverrides(patch: Record<string, number | null | undefined> | null): SQL {
  if (patch === null) return sql`'{}'::jsonb`;
  const removed = Object.keys(patch).filter((k) => patch[k] === null);
  const set = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== null && v !== undefined));
  const kept = removed.reduce<SQL>((acc, field) => sql`(${acc} - ${field}::text)`, sql`${tenants.overrides}`);
  return sql`${kept} || ${JSON.stringify(set)}::jsonb`;
}

async function requirePlan(db: Db, planId: string): Promise<Plan> {
  const plan = await db.query.plans.findFirst({ where: eq(plans.id, planId) });
  if (!plan)
    throw new GatewayError("validation_failed", "No such plan.", {
      errors: [{ path: "planId", message: "unknown plan" }],
    });
  return plan;
}

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
    const created = await createTenant(c.env, db, plan, input, {
      env: "live",
      name: "default",
      role: "admin",
    });
    if (!created) throw new GatewayError("conflict", `A tenant with slug '${input.slug}' already exists.`);
    return c.json(
      { tenant: tenantOut(created.tenant), key: { ...keyOut(created.key.row), key: created.key.plaintext } },
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
    const { overrides, ...patch } = c.req.valid("json");
    const db = c.var.db;
    const target = patch.planId ? await requirePlan(db, patch.planId) : null;
    const updated = await db.transaction(async (tx) => {
      const [before] = await tx.select().from(tenants).where(eq(tenants.id, id)).for("update");
      if (!before) return null;
      const [row] = await tx
        .update(tenants)
        .set({
          ...patch,
          // The operator's status is theirs: billing events never lift it (workers/billing/dunning.ts).
          ...(patch.status === undefined
            ? {}
            : { statusReason: "operator" as const, pastDueSince: null, graceUntil: null }),
          ...(overrides === undefined ? {} : { overrides: mergeOverrides(overrides) }),
          updatedAt: new Date(),
        })
        .where(eq(tenants.id, id))
        .returning();
      const sync =
        target && target.id !== before.planId
          ? await enqueueBillingSync(tx, id, {
              planId: target.id,
              pricingVersion: target.pricingVersion,
              prorate: true,
            })
          : null;
      return row ? { row, sync } : null;
    });
    if (!updated) throw new GatewayError("not_found", "No such tenant.");
    // The tenant object first: the next request sees the new limits whatever Stripe does.
    await projectTenant(c.env, updated.row, await requirePlan(db, updated.row.planId));
    let row = updated.row;
    if (updated.sync) {
      await syncBilling(c.env, db, { ids: [updated.sync] });
      row = (await db.query.tenants.findFirst({ where: eq(tenants.id, id) })) ?? row;
    }
    return c.json(tenantOut(row), 200);
  });
}

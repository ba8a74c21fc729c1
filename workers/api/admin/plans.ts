/** `/admin/v1/plans`: list, create, read, update. A plan change is re-projected to every tenant on it. */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { plans, tenants } from "../../../schema";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { newId } from "../../shared/ids";
import { keyset, PageQuery, pageOf } from "../pagination";
import { projectTenant } from "../projection";
import {
  IdParam,
  json,
  PlanInput,
  PlanPatch,
  PlanSchema,
  planOut,
  problemResponses,
  adminSecurity as security,
} from "../schemas";

const list = createRoute({
  method: "get",
  path: "/admin/v1/plans",
  tags: ["Admin: plans"],
  security,
  request: { query: PageQuery },
  responses: {
    200: { description: "Plans, oldest first", ...json(pageOf(PlanSchema)) },
    ...problemResponses(400, 401),
  },
});

const create = createRoute({
  method: "post",
  path: "/admin/v1/plans",
  tags: ["Admin: plans"],
  security,
  request: { body: { required: true, ...json(PlanInput) } },
  responses: { 201: { description: "Created", ...json(PlanSchema) }, ...problemResponses(400, 401, 409) },
});

const read = createRoute({
  method: "get",
  path: "/admin/v1/plans/{id}",
  tags: ["Admin: plans"],
  security,
  request: { params: IdParam },
  responses: { 200: { description: "The plan", ...json(PlanSchema) }, ...problemResponses(401, 404) },
});

const update = createRoute({
  method: "patch",
  path: "/admin/v1/plans/{id}",
  tags: ["Admin: plans"],
  security,
  request: { params: IdParam, body: { required: true, ...json(PlanPatch) } },
  responses: {
    200: { description: "Updated", ...json(PlanSchema) },
    ...problemResponses(400, 401, 404, 409),
  },
});

export function registerAdminPlans(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => {
    const page = keyset("plans", plans, c.req.valid("query"), "asc");
    const rows = await c.var.db
      .select({ row: plans, position: page.position })
      .from(plans)
      .where(page.where)
      .orderBy(...page.orderBy)
      .limit(page.take);
    return c.json(
      page.page(rows, planOut, (p) => p.id),
      200,
    );
  });

  app.openapi(create, async (c) => {
    const input = c.req.valid("json");
    const [row] = await c.var.db
      .insert(plans)
      .values({ id: newId("plan"), ...input })
      .onConflictDoNothing({ target: plans.name })
      .returning();
    if (!row) throw new GatewayError("conflict", `A plan named '${input.name}' already exists.`);
    return c.json(planOut(row), 201);
  });

  app.openapi(read, async (c) => {
    const row = await c.var.db.query.plans.findFirst({ where: eq(plans.id, c.req.valid("param").id) });
    if (!row) throw new GatewayError("not_found", "No such plan.");
    return c.json(planOut(row), 200);
  });

  app.openapi(update, async (c) => {
    const { id } = c.req.valid("param");
    const patch = c.req.valid("json");
    const db = c.var.db;
    if (patch.name) {
      const clash = await db.query.plans.findFirst({ where: eq(plans.name, patch.name) });
      if (clash && clash.id !== id)
        throw new GatewayError("conflict", `A plan named '${patch.name}' already exists.`);
    }
    const [row] = await db
      .update(plans)
      .set({ ...patch, updatedAt: new Date() })
      .where(eq(plans.id, id))
      .returning();
    if (!row) throw new GatewayError("not_found", "No such plan.");
    const onPlan = await db.select().from(tenants).where(eq(tenants.planId, id));
    await Promise.all(onPlan.map((t) => projectTenant(c.env, t, row)));
    return c.json(planOut(row), 200);
  });
}

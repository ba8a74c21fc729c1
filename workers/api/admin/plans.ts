/**
 * `/admin/v1/plans`: list, create, read, update. A plan change is re-projected to every tenant on it;
 * a pricing change makes a new pricing version, its Stripe prices, and a billing sync for every
 * tenant on the plan (now with proration, or at each subscription's period end).
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { eq, sql } from "drizzle-orm";
import { type Plan, planPricingVersions, plans, tenants } from "../../../schema";
import { planCreated, planUpdated } from "../../audit/details";
import { nextPeriodEnd } from "../../billing/period";
import { samePricing } from "../../billing/pricing";
import { ensurePlanPrices } from "../../billing/stripe-catalog";
import { enqueueBillingSync, SYNC_BATCH, syncBilling } from "../../billing/subscription-sync";
import type { AppEnv, Bindings } from "../../env";
import { GatewayError } from "../../errors";
import { log } from "../../log";
import { newId } from "../../shared/ids";
import { meterEventName, stripeClient } from "../../shared/stripe";
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

/**
 * Makes the Stripe product and prices of the plan's current pricing version. A failure is logged,
 * not answered: the plan is saved, and each tenant's billing sync makes the prices when Stripe is back.
 */
async function publishPrices(env: Bindings, plan: Plan): Promise<void> {
  const stripe = stripeClient(env);
  if (!stripe || plan.pricing.model === "free") return;
  try {
    await ensurePlanPrices(stripe, meterEventName(env), plan, plan.pricingVersion, plan.pricing);
  } catch (error) {
    log.warn("Stripe prices of the plan not made yet", { plan_id: plan.id, error: String(error) });
  }
}

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
    const row = await c.var.db.transaction(async (tx) => {
      const [plan] = await tx
        .insert(plans)
        .values({ id: newId("plan"), ...input })
        .onConflictDoNothing({ target: plans.name })
        .returning();
      if (plan)
        await tx.insert(planPricingVersions).values({ planId: plan.id, version: 1, pricing: plan.pricing });
      return plan;
    });
    if (!row) throw new GatewayError("conflict", `A plan named '${input.name}' already exists.`);
    c.set("audit", planCreated(row));
    await publishPrices(c.env, row);
    return c.json(planOut(row), 201);
  });

  app.openapi(read, async (c) => {
    const row = await c.var.db.query.plans.findFirst({ where: eq(plans.id, c.req.valid("param").id) });
    if (!row) throw new GatewayError("not_found", "No such plan.");
    return c.json(planOut(row), 200);
  });

  app.openapi(update, async (c) => {
    const { id } = c.req.valid("param");
    const { applyPricing = "period_end", ...patch } = c.req.valid("json");
    const db = c.var.db;
    if (patch.name) {
      const clash = await db.query.plans.findFirst({ where: eq(plans.name, patch.name) });
      if (clash && clash.id !== id)
        throw new GatewayError("conflict", `A plan named '${patch.name}' already exists.`);
    }
    const now = Date.now();
    const result = await db.transaction(async (tx) => {
      const [before] = await tx.select().from(plans).where(eq(plans.id, id)).for("update");
      if (!before) return null;
      const repriced = patch.pricing !== undefined && !samePricing(patch.pricing, before.pricing);
      const [plan] = await tx
        .update(plans)
        .set({
          ...patch,
          ...(repriced ? { pricingVersion: sql`${plans.pricingVersion} + 1` } : {}),
          updatedAt: new Date(),
        })
        .where(eq(plans.id, id))
        .returning();
      if (!plan) return null;
      const onPlan = await tx.select().from(tenants).where(eq(tenants.planId, id));
      const syncs: string[] = [];
      if (repriced) {
        await tx
          .insert(planPricingVersions)
          .values({ planId: id, version: plan.pricingVersion, pricing: plan.pricing });
        for (const t of onPlan) {
          // At the period end: the end Stripe last reported, rolled forward to the current period's.
          const later = applyPricing === "period_end" && t.stripeSubscriptionId ? t.billingPeriodEnd : null;
          const target = { planId: id, pricingVersion: plan.pricingVersion, prorate: applyPricing === "now" };
          const sync = await enqueueBillingSync(
            tx,
            t.id,
            later ? { ...target, dueAt: new Date(nextPeriodEnd(later.getTime(), now)) } : target,
          );
          if (!later) syncs.push(sync);
        }
      }
      return { before, plan, onPlan, syncs };
    });
    if (!result) throw new GatewayError("not_found", "No such plan.");
    const { before, plan: row, onPlan, syncs } = result;
    c.set("audit", planUpdated(before, row));
    await Promise.all(onPlan.map((t) => projectTenant(c.env, t, row)));
    await publishPrices(c.env, row);
    // The first batch of tenants moves in this request; the cron moves the rest within minutes.
    if (syncs.length > 0) await syncBilling(c.env, db, { ids: syncs.slice(0, SYNC_BATCH) });
    return c.json(planOut(row), 200);
  });
}

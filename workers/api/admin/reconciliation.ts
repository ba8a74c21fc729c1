/** `GET /admin/v1/reconciliation`: the per tenant, per hour reconciliation table (see services/reconciliation). */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { reconcileCredits } from "../../billing/credits/reconcile-credits";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { reconcile, unbilled } from "../../metering/reconciliation";
import { json, problemResponses, adminSecurity as security, text } from "../schemas";

const MAX_RANGE_MS = 31 * 86_400_000;

const RowSchema = z
  .object({
    tenantId: z.string(),
    slug: z.string(),
    hour: z.string(),
    admittedRequests: z.number().int(),
    usageRows: z.number().int(),
    billableUnits: z.number().int(),
    outboxUnits: z.number().int(),
    outboxPendingUnits: z.number().int(),
    outboxFailedUnits: z.number().int(),
    outboxFailure: z.string().nullable(),
    stripeUnits: z.number().int().nullable(),
    lapsedLeaseUnits: z.number().int().openapi({
      description:
        "Units of leases granted in this hour that lapsed unreported (lease mode: the isolate holding them went away). The requests admitted from them have usage rows but are not in `admittedRequests`: the hour differs by at most this many requests.",
    }),
    difference: z.boolean(),
  })
  .openapi("ReconciliationRow");

const CreditRowSchema = z
  .object({
    tenantId: z.string(),
    slug: z.string(),
    objectBalance: z.number().int(),
    ledgerBalance: z.number().int(),
    appliedUnits: z.number().int(),
    pendingEntries: z.number().int(),
    settledUnits: z.number().int(),
    unsettledUnits: z.number().int(),
    settledDrift: z.number().int(),
    objectGranted: z.number().int(),
    objectSpent: z.number().int(),
    difference: z.boolean(),
  })
  .openapi("CreditReconciliationRow", {
    description:
      "A prepaid tenant's credits: the tenant object's balance against the ledger's (applied grants, refunds and adjustments − settled usage − billable usage not settled yet), its own hourly ledger (granted, spent) against the ledger's grants and usage, and settled hours against their usage rows (`settledDrift`).",
  });

const route = createRoute({
  method: "get",
  path: "/admin/v1/reconciliation",
  tags: ["Admin: billing"],
  security,
  description:
    "Per tenant and hour: requests admitted by the tenant object, usage rows, billable units, billing outbox units and what Stripe reports. A row with `difference: true` breaks the invariant admitted = rows and billable units = outbox = Stripe; `outboxFailedUnits` are units Stripe will never bill (past its 35-day window, or refused; `outboxFailure` says why). At most 31 days per call. `credits`: per prepaid tenant (whatever the range), the tenant object's credit balance against the credit ledger.",
  request: {
    query: z.object({
      from: z.iso.datetime({ offset: true }),
      to: z.iso.datetime({ offset: true }),
      tenant: text().max(64).optional(),
    }),
  },
  responses: {
    200: {
      description: "The reconciliation table",
      ...json(
        z.object({
          from: z.string(),
          to: z.string(),
          differences: z.number().int(),
          rows: z.array(RowSchema),
          credits: z.array(CreditRowSchema),
          creditDifferences: z.number().int(),
          unbilled: z
            .object({
              units: z.number().int(),
              tenantHours: z.number().int(),
              firstHour: z.string().nullable(),
              lastHour: z.string().nullable(),
            })
            .openapi("Unbilled", {
              description:
                "Units Stripe will never bill (past its 35-day window, or refused), over every hour, not only the range asked for.",
            }),
        }),
      ),
    },
    ...problemResponses(400, 401),
  },
});

export function registerAdminReconciliation(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const q = c.req.valid("query");
    const from = Date.parse(q.from);
    const to = Date.parse(q.to);
    if (!(to > from) || to - from > MAX_RANGE_MS) {
      throw new GatewayError("validation_failed", "`to` must be after `from`, at most 31 days later.");
    }
    const [rows, never, credits] = await Promise.all([
      reconcile(c.env, c.var.db, { from, to, ...(q.tenant ? { tenantId: q.tenant } : {}) }),
      unbilled(c.var.db, q.tenant),
      reconcileCredits(c.env, c.var.db, q.tenant),
    ]);
    return c.json(
      {
        from: q.from,
        to: q.to,
        differences: rows.filter((r) => r.difference).length,
        rows,
        unbilled: never,
        credits,
        creditDifferences: credits.filter((r) => r.difference).length,
      },
      200,
    );
  });
}

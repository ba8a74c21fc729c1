/**
 * Billing views, twice over: `/gateway/v1/billing` and `/gateway/v1/invoices` for a tenant with its
 * own key (any role), and `/admin/v1/tenants/{id}/billing` and `…/invoices` for the operator. Same
 * handlers, same row-level security; only how the tenant is found differs.
 *
 * - `billing`: what the tenant will pay for its current period — units, the amount so far and a
 *   forecast, computed as Stripe will invoice them (workers/billing/billing-view.ts).
 * - `invoices`: the gateway's copy of the tenant's Stripe invoices (schema/invoices.ts, kept by the
 *   webhook receiver), newest first, cursor-paginated: no Stripe call.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import type { Context } from "hono";
import { type Invoice, invoices, tenants } from "../../schema";
import { billingView } from "../billing/billing-view";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { type Db, withTenant } from "../shared/db";
import { keyset, PageQuery, pageOf } from "./pagination";
import { adminSecurity, IdParam, json, problemResponses } from "./schemas";

const minor = z.number().int().openapi({ description: "Minor units of `currency` (cents for usd)" });
const isoDate = z.string().openapi({ format: "date-time" });

const AmountSchema = z
  .object({ baseFee: minor, usage: minor, total: minor.openapi({ description: "baseFee + usage" }) })
  .openapi("BillingAmount");

const BillingSchema = z
  .object({
    plan: z.object({
      id: z.string(),
      name: z.string(),
      model: z.enum(["free", "metered", "prepaid"]),
      pricingVersion: z.number().int(),
    }),
    currency: z.string().nullable().openapi({ description: "ISO 4217, lower case; null on a free plan" }),
    period: z.object({ start: isoDate, end: isoDate }).openapi({
      description:
        "The subscription's current period [start, end); with no subscription yet, the calendar month (UTC).",
    }),
    asOf: isoDate,
    units: z.object({
      used: z.number().int().openapi({ description: "Billable units whose hour falls in the period so far" }),
      included: z.number().int().nullable(),
      includedRemaining: z.number().int().nullable(),
      billable: z.number().int(),
    }),
    amount: AmountSchema.nullable().openapi({
      description: "So far, exactly as Stripe will invoice it; null on a prepaid plan (credits pay).",
    }),
    forecast: z.object({ units: z.number().int().nullable(), amount: AmountSchema.nullable() }).openapi({
      description:
        "For the whole period: the units so far extrapolated linearly by elapsed time (at least one hour counted), rounded to the nearest unit, priced like the units so far.",
    }),
    credits: z
      .object({
        balance: z.number().int().openapi({ description: "Units left to spend" }),
        held: z
          .number()
          .int()
          .openapi({ description: "Units held by requests in flight (spent if billable)" }),
      })
      .nullable()
      .openapi({
        description:
          "A prepaid plan's credit balance, as the tenant object holds it now; null on other plans",
      }),
  })
  .openapi("Billing");

const InvoiceSchema = z
  .object({
    id: z.string(),
    number: z.string().nullable(),
    status: z.string().openapi({ description: "draft, open, paid, uncollectible or void" }),
    currency: z.string(),
    amountDue: minor,
    amountPaid: minor,
    total: minor,
    period: z.object({ start: isoDate, end: isoDate }),
    hostedInvoiceUrl: z.string().nullable(),
    invoicePdf: z.string().nullable(),
    createdAt: isoDate,
  })
  .openapi("Invoice");

function invoiceOut(i: Invoice): z.infer<typeof InvoiceSchema> {
  return {
    id: i.id,
    number: i.number,
    status: i.status,
    currency: i.currency,
    amountDue: i.amountDue,
    amountPaid: i.amountPaid,
    total: i.total,
    period: { start: i.periodStart.toISOString(), end: i.periodEnd.toISOString() },
    hostedInvoiceUrl: i.hostedInvoiceUrl,
    invoicePdf: i.invoicePdf,
    createdAt: i.stripeCreatedAt.toISOString(),
  };
}

interface Variant {
  base: string;
  tags: string[];
  security: { [name: string]: string[] }[];
  params?: typeof IdParam;
  /** The id of the tenant the request is about (404 when there is none). */
  tenantId(c: Context<AppEnv>): Promise<string>;
}

function register(app: OpenAPIHono<AppEnv>, v: Variant): void {
  const request = v.params ? { params: v.params } : {};
  const billing = createRoute({
    method: "get",
    path: `${v.base}/billing`,
    tags: v.tags,
    security: v.security,
    request,
    responses: {
      200: { description: "What the current period costs so far, and its forecast", ...json(BillingSchema) },
      ...problemResponses(401, 404),
    },
  });
  const list = createRoute({
    method: "get",
    path: `${v.base}/invoices`,
    tags: v.tags,
    security: v.security,
    request: { ...request, query: PageQuery },
    responses: {
      200: { description: "Invoices, newest first", ...json(pageOf(InvoiceSchema)) },
      ...problemResponses(400, 401, 404),
    },
  });

  app.openapi(billing, async (c) => {
    const view = await billingView(c.env, c.var.db, await v.tenantId(c), Date.now());
    if (!view) throw new GatewayError("not_found", "No such tenant.");
    return c.json(view, 200);
  });

  app.openapi(list, async (c) => {
    const page = await invoicePage(c.var.db, await v.tenantId(c), c.req.valid("query"));
    return c.json({ data: page.data.map(invoiceOut), next_cursor: page.next_cursor }, 200);
  });
}

/** One page of a tenant's invoices, newest first: the invoices list here and in the portal. */
export async function invoicePage(
  db: Db,
  tenantId: string,
  query: { limit: number; cursor?: string | undefined },
): Promise<{ data: Invoice[]; next_cursor: string | null }> {
  const page = keyset("invoices", { createdAt: invoices.stripeCreatedAt, id: invoices.id }, query, "desc");
  // Row-level security limits the rows to the tenant; the explicit filter says so in the query too.
  const rows = await withTenant(db, tenantId, (tx) =>
    tx
      .select({ row: invoices, position: page.position })
      .from(invoices)
      .where(and(eq(invoices.tenantId, tenantId), page.where))
      .orderBy(...page.orderBy)
      .limit(page.take),
  );
  return page.page(
    rows,
    (i) => i,
    (i) => i.id,
  );
}

export function registerBilling(app: OpenAPIHono<AppEnv>): void {
  register(app, {
    base: "/gateway/v1",
    tags: ["Tenant API"],
    security: [{ apiKey: [] }],
    tenantId: async (c) => c.var.auth.tenant.id,
  });
  register(app, {
    base: "/admin/v1/tenants/{id}",
    tags: ["Admin: billing"],
    security: adminSecurity,
    params: IdParam,
    tenantId: async (c) => {
      const id = c.req.param("id") ?? "";
      const [row] = await c.var.db.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, id));
      if (!row) throw new GatewayError("not_found", "No such tenant.");
      return row.id;
    },
  });
}

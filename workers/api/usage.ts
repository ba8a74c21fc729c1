/**
 * Usage APIs, twice over: `/gateway/v1/usage…` for a tenant with its own key, and
 * `/admin/v1/tenants/{id}/usage…` for the operator. Same handlers, same row-level security;
 * only how the tenant is found differs.
 *
 * - `usage`: the current period per window (from the tenant object: the live counters).
 * - `usage/timeseries`: hourly or daily rollups by route, with latency percentiles.
 * - `usage/export`: every usage event in a range as CSV or NDJSON, streamed.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { plans, tenants } from "../../schema";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { exportUsage, timeseries } from "../metering/usage-queries";
import type { TenantRecord } from "../shared/auth-context";
import { peek, tenantConfig } from "../shared/tenant-client";
import { tenantRecord } from "./projection";
import { adminSecurity, IdParam, json, problemResponses, text } from "./schemas";

const HOUR_MS = 3_600_000;
/** The most buckets one timeseries answers (31 days of hours, 366 days): the portal keeps the same. */
export const MAX_POINTS = { hour: 24 * 31, day: 366 } as const;
/** The longest range one export streams: the portal keeps the same. */
export const MAX_EXPORT_MS = 366 * 86_400_000;

const Window = z.object({
  used: z.number().int(),
  limit: z.number().int().nullable(),
  remaining: z.number().int().nullable(),
  resetAt: z.number().int().openapi({ description: "Unix seconds" }),
});

const CurrentUsageSchema = z
  .object({
    tenant: z.string(),
    plan: z.string(),
    burst: z.object({
      limit: z.number().int(),
      remaining: z.number().int(),
      windowSeconds: z.number().int(),
      resetSeconds: z.number().int(),
    }),
    daily: Window,
    monthly: Window,
  })
  .openapi("CurrentUsage");

const PointSchema = z
  .object({
    bucketStart: z.string(),
    route: z.string(),
    requests: z.number().int(),
    billableRequests: z.number().int(),
    billableUnits: z.number().int(),
    bytesIn: z.number().int(),
    bytesOut: z.number().int(),
    statuses: z.record(z.string(), z.number().int()),
    latencyMs: z.object({
      p50: z.number().nullable(),
      p95: z.number().nullable(),
      p99: z.number().nullable(),
    }),
  })
  .openapi("UsagePoint");

const TimeseriesQuery = z.object({
  granularity: z.enum(["hour", "day"]).default("hour"),
  from: z.iso.datetime({ offset: true }),
  to: z.iso.datetime({ offset: true }),
  route: text().max(200).optional(),
});

const ExportQuery = z.object({
  format: z.enum(["csv", "ndjson"]).default("csv"),
  from: z.iso.datetime({ offset: true }),
  to: z.iso.datetime({ offset: true }),
});

/** `[from, to)` from two instants: `to` after `from`, at most `maxMs` later, else 400 `validation_failed`. */
export function range(from: string, to: string, maxMs: number): { from: Date; to: Date } {
  const f = Date.parse(from);
  const t = Date.parse(to);
  if (!(t > f) || t - f > maxMs) {
    throw new GatewayError(
      "validation_failed",
      `\`to\` must be after \`from\`, at most ${Math.round(maxMs / 86_400_000)} days later.`,
    );
  }
  return { from: new Date(f), to: new Date(t) };
}

interface Variant {
  base: string;
  tags: string[];
  security: { [name: string]: string[] }[];
  params?: typeof IdParam;
  /** The tenant the request is about. */
  tenant(c: Context<AppEnv>): Promise<TenantRecord>;
}

function register(app: OpenAPIHono<AppEnv>, v: Variant): void {
  const request = v.params ? { params: v.params } : {};
  const current = createRoute({
    method: "get",
    path: `${v.base}/usage`,
    tags: v.tags,
    security: v.security,
    request,
    responses: {
      200: { description: "Current period, per window", ...json(CurrentUsageSchema) },
      ...problemResponses(401, 404),
    },
  });
  const series = createRoute({
    method: "get",
    path: `${v.base}/usage/timeseries`,
    tags: v.tags,
    security: v.security,
    request: { ...request, query: TimeseriesQuery },
    responses: {
      200: { description: "Usage per bucket and route", ...json(z.object({ data: z.array(PointSchema) })) },
      ...problemResponses(400, 401, 404),
    },
  });
  const exported = createRoute({
    method: "get",
    path: `${v.base}/usage/export`,
    tags: v.tags,
    security: v.security,
    request: { ...request, query: ExportQuery },
    responses: {
      200: {
        description: "Usage events, streamed (CSV with a header row, or NDJSON)",
        content: { "text/csv": { schema: z.string() }, "application/x-ndjson": { schema: z.string() } },
      },
      ...problemResponses(400, 401, 404),
    },
  });

  app.openapi(current, async (c) => {
    const tenant = await v.tenant(c);
    // The tenant door read it in its one call (for the key's env: a test key sees the sandbox).
    const usage = c.var.tenantUsage ?? (await peek(c.env, tenant.id, tenantConfig(tenant)));
    return c.json({ tenant: tenant.slug, plan: tenant.plan.name, ...usage }, 200);
  });

  app.openapi(series, async (c) => {
    const tenant = await v.tenant(c);
    const q = c.req.valid("query");
    const r = range(
      q.from,
      q.to,
      MAX_POINTS[q.granularity] * (q.granularity === "hour" ? HOUR_MS : 24 * HOUR_MS),
    );
    const data = await timeseries(c.var.db, tenant.id, {
      granularity: q.granularity,
      ...r,
      ...(q.route ? { route: q.route } : {}),
    });
    return c.json({ data }, 200);
  });

  app.openapi(exported, async (c) => {
    const tenant = await v.tenant(c);
    const q = c.req.valid("query");
    const r = range(q.from, q.to, MAX_EXPORT_MS);
    const stream = exportUsage(c.env, tenant.id, { ...r, format: q.format });
    return new Response(stream, {
      headers: {
        "content-type": q.format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
        "content-disposition": `attachment; filename="usage-${tenant.slug}.${q.format}"`,
      },
    }) as never;
  });
}

export function registerUsage(app: OpenAPIHono<AppEnv>): void {
  register(app, {
    base: "/gateway/v1",
    tags: ["Tenant API"],
    security: [{ apiKey: [] }],
    tenant: async (c) => c.var.auth.tenant,
  });
  register(app, {
    base: "/admin/v1/tenants/{id}",
    tags: ["Admin: usage"],
    security: adminSecurity,
    params: IdParam,
    tenant: async (c) => {
      const id = c.req.param("id") ?? "";
      const row = await c.var.db.query.tenants.findFirst({ where: eq(tenants.id, id) });
      if (!row) throw new GatewayError("not_found", "No such tenant.");
      const plan = await c.var.db.query.plans.findFirst({ where: eq(plans.id, row.planId) });
      if (!plan) throw new GatewayError("not_found", "No such plan.");
      return tenantRecord(row, plan);
    },
  });
}

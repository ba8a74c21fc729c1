/**
 * `GET /admin/v1/routes/:prefix/shadow`: how a route's shadow origin compares with its primary
 * (workers/edge/shadow.ts) over the last `hours` or a `from`/`to` range: counts, match rate, average
 * latency of each and the delta, and the newest mismatch samples.
 *
 * The prefix comes URL-encoded as one segment (`/admin/v1/routes/%2Fv1%2Freports%2F/shadow`) or
 * plainly (`/admin/v1/routes/v1/reports/shadow`): the routing path takes a regex param spanning
 * segments, so both reach the same handler; the documented path is the encoded form.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { and, desc, gte, lt, sql } from "drizzle-orm";
import { shadowMismatches, shadowResults } from "../../../schema";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { json, problemResponses, adminSecurity as security, text } from "../schemas";

const HOUR_MS = 3_600_000;
const MAX_HOURS = 31 * 24;
const DEFAULT_HOURS = 24;
const MAX_SAMPLES = 100;

const ShadowConfigSchema = z
  .object({
    origin: z.string(),
    sampleRate: z.number(),
    methods: z.array(z.string()),
    compareHeaders: z.array(z.string()),
    timeoutMs: z.number().int(),
  })
  .openapi("ShadowConfig");

const MismatchSchema = z
  .object({
    requestId: z.string(),
    tenantId: z.string(),
    method: z.string(),
    path: z.string(),
    diff: z.object({
      status: z.object({ primary: z.number().int(), shadow: z.number().int() }).optional(),
      body: z.object({ primary: z.string(), shadow: z.string() }).optional(),
      headers: z.record(z.string(), z.tuple([z.string().nullable(), z.string().nullable()])).optional(),
    }),
    primaryLatencyMs: z.number().int(),
    shadowLatencyMs: z.number().int(),
    at: z.string(),
  })
  .openapi("ShadowMismatch", {
    description:
      "What differed: status, the SHA-256 (hex) of each body, compared headers as [primary, shadow].",
  });

/** The answer of the shadow report (the CLI reads its type from here). */
export const ShadowReportSchema = z
  .object({
    route: z.string(),
    shadow: ShadowConfigSchema.nullable().openapi({ description: "The route's shadow now; null: none." }),
    from: z.string(),
    to: z.string(),
    compared: z.number().int().openapi({ description: "Copies sent: matched + mismatched + failed." }),
    matched: z.number().int(),
    mismatched: z.number().int(),
    failed: z.number().int().openapi({ description: "The shadow failed or ran out of time: not compared." }),
    matchRate: z
      .number()
      .nullable()
      .openapi({ description: "matched / (matched + mismatched); null when nothing was compared." }),
    latency: z.object({
      primaryAvgMs: z.number().nullable(),
      shadowAvgMs: z.number().nullable(),
      deltaMs: z.number().nullable().openapi({ description: "shadowAvgMs − primaryAvgMs." }),
    }),
    mismatches: z.array(MismatchSchema),
  })
  .openapi("ShadowReport");

const Query = z.object({
  hours: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_HOURS)
    .optional()
    .openapi({ description: `The last N hours (default ${DEFAULT_HOURS}); not with from/to.` }),
  from: z.iso.datetime({ offset: true }).optional(),
  to: z.iso.datetime({ offset: true }).optional(),
  samples: z.coerce.number().int().min(0).max(MAX_SAMPLES).default(20),
});

const report = createRoute({
  method: "get",
  path: "/admin/v1/routes/{prefix}/shadow",
  tags: ["Admin: routes"],
  security,
  description: `Shadow traffic of one route (the prefix URL-encoded, \`%2Fv1%2Freports%2F\`, or plain: \`/admin/v1/routes/v1/reports/shadow\`): copies compared, matched, mismatched and failed, the match rate, the average latency of the primary and of the shadow and their difference, and the newest mismatches (\`samples\`, at most ${MAX_SAMPLES}; at most 20 are kept per route and hour). Over the last \`hours\` (default ${DEFAULT_HOURS}), or \`from\`/\`to\` (both, at most 31 days), counted by the hour of the requests.`,
  request: { params: z.object({ prefix: text().min(1).max(512) }), query: Query },
  responses: {
    200: { description: "The route's shadow report", ...json(ShadowReportSchema) },
    ...problemResponses(400, 401, 404),
  },
});

/** `v1/reports`, `/v1/reports/` (decoded) → `/v1/reports/`, the route table's form. */
export function routePrefix(param: string): string {
  const trimmed = param.replace(/^\/+|\/+$/g, "");
  return trimmed === "" ? "/" : `/${trimmed}/`;
}

/** The range asked for: the last `hours` (whole hours, the current one included) or `from`/`to`. */
function rangeOf(q: z.infer<typeof Query>, now: number): { from: number; to: number } {
  if (q.from === undefined && q.to === undefined) {
    const hours = q.hours ?? DEFAULT_HOURS;
    return { from: (Math.floor(now / HOUR_MS) - hours + 1) * HOUR_MS, to: now };
  }
  if (q.hours !== undefined)
    throw new GatewayError("validation_failed", "Give either `hours` or `from` and `to`, not both.");
  if (q.from === undefined || q.to === undefined)
    throw new GatewayError("validation_failed", "`from` and `to` go together.");
  const from = Date.parse(q.from);
  const to = Date.parse(q.to);
  if (!(to > from) || to - from > MAX_HOURS * HOUR_MS)
    throw new GatewayError("validation_failed", "`to` must be after `from`, at most 31 days later.");
  return { from, to };
}

const avg = (sum: number, n: number) => (n > 0 ? Math.round((sum / n) * 10) / 10 : null);

export function registerAdminShadow(app: OpenAPIHono<AppEnv>): void {
  // Routed with a param that spans segments, so the plain form reaches it too (see the header).
  app.openapi({ ...report, path: "/admin/v1/routes/:prefix{.+}/shadow", hide: true }, async (c) => {
    const prefix = routePrefix(c.req.valid("param").prefix);
    const route = c.var.config.routes.find((r) => r.prefix === prefix);
    if (!route) throw new GatewayError("not_found", `No route ${prefix} in the route table.`);
    const q = c.req.valid("query");
    const { from, to } = rangeOf(q, Date.now());
    // Counters are per hour: every hour that starts in the range.
    const hourFrom = new Date(Math.ceil(from / HOUR_MS) * HOUR_MS);
    const [totals] = await c.var.db
      .select({
        compared: sql<number>`coalesce(sum(${shadowResults.compared}), 0)::int`,
        matched: sql<number>`coalesce(sum(${shadowResults.matched}), 0)::int`,
        mismatched: sql<number>`coalesce(sum(${shadowResults.mismatched}), 0)::int`,
        failed: sql<number>`coalesce(sum(${shadowResults.failed}), 0)::int`,
        primaryMs: sql<number>`coalesce(sum(${shadowResults.primaryLatencyMs}), 0)::float8`,
        shadowMs: sql<number>`coalesce(sum(${shadowResults.shadowLatencyMs}), 0)::float8`,
      })
      .from(shadowResults)
      .where(
        and(
          sql`${shadowResults.route} = ${prefix}`,
          gte(shadowResults.hour, hourFrom),
          lt(shadowResults.hour, new Date(to)),
        ),
      );
    const samples =
      q.samples === 0
        ? []
        : await c.var.db
            .select()
            .from(shadowMismatches)
            .where(
              and(
                sql`${shadowMismatches.route} = ${prefix}`,
                gte(shadowMismatches.at, new Date(from)),
                lt(shadowMismatches.at, new Date(to)),
              ),
            )
            .orderBy(desc(shadowMismatches.at), desc(shadowMismatches.requestId))
            .limit(q.samples);
    const t = totals ?? { compared: 0, matched: 0, mismatched: 0, failed: 0, primaryMs: 0, shadowMs: 0 };
    const answered = t.matched + t.mismatched;
    const primaryAvgMs = avg(t.primaryMs, answered);
    const shadowAvgMs = avg(t.shadowMs, answered);
    return c.json(
      {
        route: prefix,
        shadow: route.shadow ?? null,
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        compared: t.compared,
        matched: t.matched,
        mismatched: t.mismatched,
        failed: t.failed,
        matchRate: answered > 0 ? t.matched / answered : null,
        latency: {
          primaryAvgMs,
          shadowAvgMs,
          deltaMs:
            primaryAvgMs === null || shadowAvgMs === null
              ? null
              : Math.round((shadowAvgMs - primaryAvgMs) * 10) / 10,
        },
        mismatches: samples.map((m) => ({
          requestId: m.requestId,
          tenantId: m.tenantId,
          method: m.method,
          path: m.path,
          diff: m.diff,
          primaryLatencyMs: m.primaryLatencyMs,
          shadowLatencyMs: m.shadowLatencyMs,
          at: m.at.toISOString(),
        })),
      },
      200,
    );
  });
  // The documented form (the prefix as one encoded segment), for the OpenAPI document only.
  app.openAPIRegistry.registerPath(report);
}

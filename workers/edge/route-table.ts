/**
 * The route table: which path prefixes the gateway proxies, to which origin, at what cost.
 * Parsed once per isolate from the `ROUTES` var, with the other vars, by workers/config.ts.
 * Longest prefix wins; a path outside the table is never proxied.
 */
import { z } from "zod";

/** Longest a shadow copy may take (headers and body); a sampled request's usage event waits for it. */
export const MAX_SHADOW_TIMEOUT_MS = 10_000;
export const DEFAULT_SHADOW_TIMEOUT_MS = 2_000;

const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/**
 * Shadow traffic (workers/edge/shadow.ts): a copy of a sample of the route's admitted live requests
 * goes to `origin` after the primary answered, and the two answers are compared.
 */
const ShadowSchema = z
  .object({
    /** Base URL of the shadow origin; the request's path and query are appended as for `origin`. */
    origin: z.url({ protocol: /^https?$/, error: "must be an absolute http(s) URL" }),
    /** Share of the admitted requests copied, 0..1. */
    sampleRate: z.number().min(0).max(1),
    /**
     * Methods copied. Only GET by default: listing another method marks it safe to send twice for
     * this route (the shadow must not act on it: its claims say `shadow: true`).
     */
    methods: z.array(z.enum(HTTP_METHODS)).min(1).default(["GET"]),
    /** Response headers compared, besides status and body hash (lower-case names). */
    compareHeaders: z
      .array(z.string().regex(/^[a-z0-9!#$%&'*+.^_`|~-]{1,64}$/, "must be a lower-case header name"))
      .max(10)
      .default(["content-type"]),
    /** Time the shadow has to answer in full; past it the copy counts as failed. */
    timeoutMs: z.number().int().min(1).max(MAX_SHADOW_TIMEOUT_MS).default(DEFAULT_SHADOW_TIMEOUT_MS),
  })
  .strict();

export type RouteShadow = z.infer<typeof ShadowSchema>;

const RouteSchema = z
  .object({
    /** Path prefix, starting and ending with `/` (e.g. `/v1/reports/`). */
    prefix: z
      .string()
      .regex(/^\/([A-Za-z0-9._~-]+\/)*$/, "must start and end with / and hold plain segments"),
    /** Units charged per request (rate limit tokens and quota). */
    cost: z.number().int().min(0).default(1),
    billable: z.boolean().default(true),
    /** Plan entitlement required to call the route; omitted = any plan. */
    entitlement: z.string().min(1).optional(),
    /** Overrides `ORIGIN_URL` / `SANDBOX_ORIGIN_URL` for this route. */
    origin: z.url().optional(),
    sandboxOrigin: z.url().optional(),
    /** Origin timeout for this route (time to response headers). */
    timeoutMs: z.number().int().positive().optional(),
    /** RFC 9745 `Deprecation` and RFC 8594 `Sunset` dates (ISO 8601). */
    deprecation: z.iso.datetime({ offset: true }).optional(),
    sunset: z.iso.datetime({ offset: true }).optional(),
    /** Shadow traffic: a shadow origin, a sample rate and what to compare (see ShadowSchema). */
    shadow: ShadowSchema.optional(),
  })
  .strict();

export type Route = z.infer<typeof RouteSchema>;

/**
 * The `ROUTES` var: JSON text holding the table, sorted longest prefix first. workers/config.ts
 * parses it once per isolate with the other vars.
 */
export const RouteTableSchema = z
  .string({ error: "is required (a JSON array of routes)" })
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: "custom", message: "is not valid JSON" });
      return z.NEVER;
    }
  })
  .pipe(z.array(RouteSchema, { error: "must be a JSON array of routes" }))
  .transform((routes) => [...routes].sort((a, b) => b.prefix.length - a.prefix.length));

/** Parses a route table, longest prefix first. Throws a descriptive error on a bad table. */
export function loadRoutes(text: string): Route[] {
  const parsed = RouteTableSchema.safeParse(text);
  if (!parsed.success) throw new Error(`ROUTES is invalid: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** The route whose prefix matches `path`, or undefined. */
export function matchRoute(routes: readonly Route[], path: string): Route | undefined {
  return routes.find((r) => path.startsWith(r.prefix) || `${path}/` === r.prefix);
}

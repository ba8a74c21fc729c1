/**
 * The route table: which path prefixes the gateway proxies, to which origin, at what cost.
 * Parsed once per isolate from the `ROUTES` var (re-parsed only if the var's text changes).
 * Longest prefix wins; a path outside the table is never proxied.
 */
import { z } from "zod";

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
  })
  .strict();

export type Route = z.infer<typeof RouteSchema>;

const RouteTableSchema = z.array(RouteSchema);

let cached: { text: string; routes: Route[] } | undefined;

/** Parses the route table, longest prefix first. Throws a descriptive error on a bad config. */
export function loadRoutes(text: string): Route[] {
  if (cached?.text === text) return cached.routes;
  const parsed = RouteTableSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`ROUTES is invalid: ${z.prettifyError(parsed.error)}`);
  const routes = [...parsed.data].sort((a, b) => b.prefix.length - a.prefix.length);
  cached = { text, routes };
  return routes;
}

/** The route whose prefix matches `path`, or undefined. */
export function matchRoute(routes: readonly Route[], path: string): Route | undefined {
  return routes.find((r) => path.startsWith(r.prefix) || `${path}/` === r.prefix);
}

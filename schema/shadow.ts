/**
 * Shadow traffic (workers/edge/shadow.ts): a route may name a shadow origin and a sample rate; a
 * copy of each sampled admitted request goes there after the client's response, and the two
 * responses are compared. Per route and hour: how many were compared, matched, differed or failed,
 * and the summed latencies (the match rate and latency delta `GET /admin/v1/routes/:prefix/shadow`
 * reports); a bounded sample of the mismatches, with what differed.
 *
 * Operator data: no tenant reads it (no row-level-security policy, no grant to gateway_tenant).
 */
import { bigint, index, integer, jsonb, pgTable, primaryKey, text, timestamp } from "drizzle-orm/pg-core";

export const shadowResults = pgTable(
  "shadow_results",
  {
    /** The route-table prefix (`/v1/reports/`). */
    route: text("route").notNull(),
    hour: timestamp("hour", { withTimezone: true }).notNull(),
    /** Comparisons made (matched + mismatched + failed). */
    compared: integer("compared").notNull().default(0),
    matched: integer("matched").notNull().default(0),
    mismatched: integer("mismatched").notNull().default(0),
    /** The shadow could not be reached or timed out: no comparison of its response. */
    failed: integer("failed").notNull().default(0),
    /** Summed latency of the primary and of the shadow over the compared (not failed) copies, ms. */
    primaryLatencyMs: bigint("primary_latency_ms", { mode: "number" }).notNull().default(0),
    shadowLatencyMs: bigint("shadow_latency_ms", { mode: "number" }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.route, t.hour] })],
);

/** What differed between the primary's and the shadow's answer to one request. */
export interface ShadowDiff {
  status?: { primary: number; shadow: number };
  body?: { primary: string; shadow: string };
  /** Compared header → [primary value, shadow value] (null: absent). */
  headers?: Record<string, [string | null, string | null]>;
}

export const shadowMismatches = pgTable(
  "shadow_mismatches",
  {
    /** The request id of the client's request (`req_…`): one sample per request at most. */
    requestId: text("request_id").primaryKey(),
    route: text("route").notNull(),
    tenantId: text("tenant_id").notNull(),
    method: text("method").notNull(),
    /** Path and query as proxied (truncated to 512 characters). */
    path: text("path").notNull(),
    diff: jsonb("diff").$type<ShadowDiff>().notNull(),
    primaryLatencyMs: integer("primary_latency_ms").notNull(),
    shadowLatencyMs: integer("shadow_latency_ms").notNull(),
    at: timestamp("at", { withTimezone: true }).notNull(),
  },
  (t) => [index("shadow_mismatches_route_at_idx").on(t.route, t.at)],
);

/**
 * Hourly and daily usage per tenant × route × status class, maintained by the queue consumer in
 * the same statement that inserts the events — counting only rows actually inserted, so a
 * redelivered event never counts twice. Latency is kept as a fixed-bucket histogram
 * (workers/metering/latency-histogram.ts) so percentiles can be computed over any range.
 */
import { sql } from "drizzle-orm";
import {
  bigint,
  index,
  integer,
  pgEnum,
  pgPolicy,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
} from "drizzle-orm/pg-core";
import { currentTenant, tenantRole } from "./roles";
import { tenants } from "./tenants";

export const rollupGranularity = pgEnum("rollup_granularity", ["hour", "day"]);

export const usageRollups = pgTable(
  "usage_rollups",
  {
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    granularity: rollupGranularity("granularity").notNull(),
    bucketStart: timestamp("bucket_start", { withTimezone: true }).notNull(),
    route: text("route").notNull(),
    /** 2 for 2xx, 4 for 4xx, 5 for 5xx (gateway 502/504 included). */
    statusClass: smallint("status_class").notNull(),
    requests: bigint("requests", { mode: "number" }).notNull(),
    billableRequests: bigint("billable_requests", { mode: "number" }).notNull(),
    billableUnits: bigint("billable_units", { mode: "number" }).notNull(),
    bytesIn: bigint("bytes_in", { mode: "number" }).notNull(),
    bytesOut: bigint("bytes_out", { mode: "number" }).notNull(),
    latencyHistogram: integer("latency_histogram").array().notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.tenantId, t.granularity, t.bucketStart, t.route, t.statusClass] }),
    // Who called a route lately (route.deprecated, workers/events/route-notices.ts) without a scan.
    index("usage_rollups_route_idx").on(t.route, t.granularity, t.bucketStart),
    pgPolicy("usage_rollups_tenant", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();

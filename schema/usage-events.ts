/** One row per usage event (id = request id), written by the queue consumer with ON CONFLICT DO NOTHING. */
import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  index,
  integer,
  pgPolicy,
  pgTable,
  smallint,
  text,
  timestamp,
} from "drizzle-orm/pg-core";
import { keyEnv } from "./api-keys";
import { currentTenant, tenantRole } from "./roles";
import { tenants } from "./tenants";

export const usageEvents = pgTable(
  "usage_events",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    keyId: text("key_id").notNull(),
    env: keyEnv("env").notNull(),
    method: text("method").notNull(),
    route: text("route").notNull(),
    status: smallint("status").notNull(),
    billable: boolean("billable").notNull(),
    units: integer("units").notNull(),
    bytesIn: bigint("bytes_in", { mode: "number" }).notNull(),
    bytesOut: bigint("bytes_out", { mode: "number" }).notNull(),
    latencyMs: integer("latency_ms").notNull(),
    ts: timestamp("ts", { withTimezone: true }).notNull(),
  },
  (t) => [
    index("usage_events_tenant_ts_idx").on(t.tenantId, t.ts),
    pgPolicy("usage_events_tenant", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();

/**
 * Webhooks to tenants (workers/events/): the endpoints a tenant registers, the events that happened
 * to it, one delivery per event and endpoint, and every attempt of a delivery (the delivery log).
 *
 * An event is stored once (its id is the `webhook-id` every attempt carries, so a receiver can
 * dedupe retries); its deliveries are fanned out in the same transaction to the tenant's enabled
 * endpoints that subscribe to its type. A delivery is `pending` until an attempt succeeds, is
 * `dead` once its retries are exhausted (the dead-letter store the operator replays from), and
 * `cancelled` when its endpoint was disabled or deleted before it got through.
 */
import { sql } from "drizzle-orm";
import {
  bigserial,
  boolean,
  index,
  integer,
  jsonb,
  pgEnum,
  pgPolicy,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
} from "drizzle-orm/pg-core";
import { currentTenant, tenantRole } from "./roles";
import { tenants } from "./tenants";

const ownRows = (name: string, tenantId: unknown) =>
  pgPolicy(name, {
    for: "all",
    to: tenantRole,
    using: sql`${tenantId} = ${currentTenant}`,
    withCheck: sql`${tenantId} = ${currentTenant}`,
  });

export const webhookEndpoints = pgTable(
  "webhook_endpoints",
  {
    /** `whep_…`. */
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    /** https only in production; never a private, loopback, link-local or metadata address (workers/events/endpoint-url.ts). */
    url: text("url").notNull(),
    description: text("description").notNull().default(""),
    /** Event types delivered here; empty = every type. */
    eventTypes: text("event_types").array().notNull().default(sql`'{}'::text[]`),
    enabled: boolean("enabled").notNull().default(true),
    /** Why it was switched off: `gone` (the receiver answered 410), `failing` (5 days of failures), `tenant`. */
    disabledReason: text("disabled_reason"),
    /** `whsec_` + base64 of 32 random bytes: the HMAC key of `webhook-signature`. */
    secret: text("secret").notNull(),
    /** The secret before the last rotation: deliveries are signed with both until `previousSecretUntil`. */
    previousSecret: text("previous_secret"),
    previousSecretUntil: timestamp("previous_secret_until", { withTimezone: true }),
    /** Set at the first failed attempt after a success, cleared by the next success. */
    failingSince: timestamp("failing_since", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("webhook_endpoints_tenant_idx").on(t.tenantId),
    ownRows("webhook_endpoints_self", t.tenantId),
  ],
).enableRLS();

export const webhookEvents = pgTable(
  "webhook_events",
  {
    /** `evt_…`: the `webhook-id` of every delivery of this event. Stable across re-emits (dedupe key). */
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    /** One of workers/events/catalog.ts's types. */
    type: text("type").notNull(),
    data: jsonb("data").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("webhook_events_tenant_created_idx").on(t.tenantId, t.createdAt),
    index("webhook_events_created_idx").on(t.createdAt),
    pgPolicy("webhook_events_self", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();

export const webhookDeliveryStatus = pgEnum("webhook_delivery_status", [
  "pending",
  "succeeded",
  "dead",
  "cancelled",
]);

export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    /** `dlv_…`. */
    id: text("id").primaryKey(),
    tenantId: text("tenant_id")
      .notNull()
      .references(() => tenants.id),
    eventId: text("event_id")
      .notNull()
      .references(() => webhookEvents.id, { onDelete: "cascade" }),
    endpointId: text("endpoint_id")
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: "cascade" }),
    status: webhookDeliveryStatus("status").notNull().default("pending"),
    /** Attempts made so far. */
    attempts: integer("attempts").notNull().default(0),
    /** When the next attempt is due (pending only). */
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }),
    /** An attempt in progress holds the delivery until then, so two consumers never send it at once. */
    claimedUntil: timestamp("claimed_until", { withTimezone: true }),
    lastStatus: integer("last_status"),
    lastError: text("last_error"),
    /** How often the operator or tenant sent it again by hand. */
    replays: integer("replays").notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("webhook_deliveries_event_endpoint_idx").on(t.eventId, t.endpointId),
    index("webhook_deliveries_endpoint_created_idx").on(t.endpointId, t.createdAt),
    index("webhook_deliveries_due_idx").on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    index("webhook_deliveries_dead_idx").on(t.updatedAt).where(sql`${t.status} = 'dead'`),
    index("webhook_deliveries_created_idx").on(t.createdAt),
    pgPolicy("webhook_deliveries_self", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();

export const webhookAttempts = pgTable(
  "webhook_attempts",
  {
    id: bigserial("id", { mode: "number" }).primaryKey(),
    tenantId: text("tenant_id").notNull(),
    deliveryId: text("delivery_id")
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: "cascade" }),
    /** 1 for the first attempt. */
    attempt: integer("attempt").notNull(),
    startedAt: timestamp("started_at", { withTimezone: true }).notNull(),
    /** The receiver's status; null when no response came (timeout, refused, DNS). */
    status: integer("status"),
    latencyMs: integer("latency_ms").notNull(),
    /** The first bytes of the response body (at most 1 KiB). */
    responseExcerpt: text("response_excerpt"),
    /** Why it failed without a status, or why a status counts as failure. */
    error: text("error"),
  },
  (t) => [
    index("webhook_attempts_delivery_idx").on(t.deliveryId, t.attempt),
    index("webhook_attempts_started_idx").on(t.startedAt),
    pgPolicy("webhook_attempts_self", {
      for: "select",
      to: tenantRole,
      using: sql`${t.tenantId} = ${currentTenant}`,
    }),
  ],
).enableRLS();

/**
 * Which route deprecations have been announced (`route.deprecated`): one row per route prefix and
 * deprecation/sunset pair, so each change of dates is announced once.
 */
export const routeNotices = pgTable(
  "route_notices",
  {
    prefix: text("prefix").notNull(),
    /** The deprecation and sunset dates as announced (`<deprecation>|<sunset>`). */
    fingerprint: text("fingerprint").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.prefix, t.fingerprint] })],
).enableRLS();

export type WebhookEndpoint = typeof webhookEndpoints.$inferSelect;
export type WebhookEvent = typeof webhookEvents.$inferSelect;
export type WebhookDelivery = typeof webhookDeliveries.$inferSelect;
export type WebhookAttempt = typeof webhookAttempts.$inferSelect;

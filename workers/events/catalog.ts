/**
 * The events a tenant can be told about through its webhooks: each type and the shape of its
 * `data`. One list, read by the emitters (they build `data` with these types), the endpoints API
 * (which types an endpoint may subscribe to) and the OpenAPI document's `webhooks` section.
 *
 * On the wire every delivery's body is `{ "type", "timestamp", "data" }` (Standard Webhooks'
 * payload shape); the event id travels in the `webhook-id` header, the same on every retry.
 */
import { z } from "zod";

const env = z.enum(["live", "test"]);
const iso = z.iso.datetime();

/** `data` of each event type. */
export const EVENT_DATA = {
  "usage.threshold.reached": z.object({
    /** `daily` / `monthly`: the quota of that calendar-UTC period; `credits`: the prepaid balance since its last top-up. */
    window: z.enum(["daily", "monthly", "credits"]),
    /** Percent of the limit reached: 80 or 100. */
    threshold: z.union([z.literal(80), z.literal(100)]),
    env,
    /** The period: `2026-12-01` (daily), `2026-12` (monthly), or the top-up's grant id (credits). */
    period: z.string(),
    /** Units used in the period, counting the request that crossed the threshold. */
    used: z.number().int(),
    limit: z.number().int(),
  }),
  "key.created": z.object({ keyId: z.string(), env, prefix: z.string(), name: z.string().nullable() }),
  "key.revoked": z.object({ keyId: z.string(), revokedAt: iso }),
  "key.rotated": z.object({
    keyId: z.string(),
    newKeyId: z.string(),
    /** When the old key stops working (the rotation's grace period). */
    oldKeyExpiresAt: iso,
  }),
  "key.expiring": z.object({ keyId: z.string(), expiresAt: iso }),
  "tenant.status.changed": z.object({
    from: z.string(),
    to: z.string(),
    /** Who set the new status: `operator` (admin API or console) or `billing` (dunning). */
    reason: z.enum(["operator", "billing"]),
  }),
  "plan.changed": z.object({
    from: z.object({ id: z.string(), name: z.string() }),
    to: z.object({ id: z.string(), name: z.string() }),
  }),
  "route.deprecated": z.object({
    route: z.string(),
    deprecation: iso.nullable(),
    sunset: iso.nullable(),
    /** The tenant's last call to the route (within the last 30 days), to the day: the start of that UTC day. */
    lastCalledAt: iso,
  }),
  "invoice.paid": z.object({
    invoiceId: z.string(),
    number: z.string().nullable(),
    currency: z.string(),
    amountPaid: z.number().int(),
  }),
  "invoice.payment_failed": z.object({
    invoiceId: z.string(),
    number: z.string().nullable(),
    currency: z.string(),
    amountDue: z.number().int(),
  }),
  "credits.purchased": z.object({ units: z.number().int(), balance: z.number().int().nullable() }),
  "webhook.endpoint.disabled": z.object({
    endpointId: z.string(),
    url: z.string(),
    /** `gone`: the receiver answered 410; `failing`: every attempt failed for 5 days. */
    reason: z.enum(["gone", "failing"]),
  }),
  /** Sent by `POST /gateway/v1/webhooks/:id/test` to that endpoint only. */
  "webhook.test": z.object({ endpointId: z.string(), message: z.string() }),
} as const;

export type EventType = keyof typeof EVENT_DATA;
export type EventData<T extends EventType> = z.infer<(typeof EVENT_DATA)[T]>;

export const EVENT_TYPES = Object.keys(EVENT_DATA) as EventType[];

export const isEventType = (value: string): value is EventType => Object.hasOwn(EVENT_DATA, value);

/** An event as it is emitted (before it is stored). */
export interface NewEvent<T extends EventType = EventType> {
  /**
   * `evt_…`; give a deterministic id when the same fact may be emitted twice (a cron that runs
   * again, a queue that redelivers): the event is stored, and delivered, once.
   */
  id?: string;
  tenantId: string;
  type: T;
  data: EventData<T>;
  /** Default: now. */
  at?: Date;
}

/** The body of every delivery of an event (Standard Webhooks' payload shape). */
export const deliveryBody = (event: { type: string; createdAt: Date; data: unknown }): string =>
  JSON.stringify({ type: event.type, timestamp: event.createdAt.toISOString(), data: event.data });

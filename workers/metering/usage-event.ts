/**
 * The usage event: the contract between the producer (proxy, via waitUntil) and the queue
 * consumer. Both sides validate with this one schema.
 */
import { z } from "zod";

export const UsageEventSchema = z.object({
  /** = the request id; the consumer's idempotency key. */
  id: z.string().regex(/^req_[0-9a-z]{26}$/),
  tenantId: z.string().min(1),
  keyId: z.string().min(1),
  env: z.enum(["live", "test"]),
  method: z.string().min(1).max(16),
  /** The route-table prefix that matched (not the full path: bounded cardinality). */
  route: z.string().min(1),
  /** Status returned to the client (origin's, or the gateway's 502/504). */
  status: z.number().int().min(100).max(599),
  billable: z.boolean(),
  units: z.number().int().min(0),
  bytesIn: z.number().int().min(0),
  bytesOut: z.number().int().min(0),
  latencyMs: z.number().int().min(0),
  /** ISO 8601 time the request arrived. */
  ts: z.iso.datetime(),
});

export type UsageEvent = z.infer<typeof UsageEventSchema>;

/**
 * Billable: a 2xx or 4xx answered by the origin, on a billable route, with a live key.
 * Not 5xx (including our 502/504), not gateway rejections, not test keys.
 */
export function isBillable(input: { status: number; routeBillable: boolean; env: "live" | "test" }): boolean {
  const ok = (input.status >= 200 && input.status < 300) || (input.status >= 400 && input.status < 500);
  return ok && input.routeBillable && input.env === "live";
}

/**
 * What the producer puts on the queue: many usage events in one message (a Queue takes at most
 * 5,000 messages/s, so one message per request would cap metering at 5k req/s). `v` versions the
 * envelope; a bare `UsageEvent` body is the legacy form, still accepted by the consumer while
 * messages from before the change are in flight. Events are checked one by one by the consumer
 * (a partly invalid message stores its valid events), so `events` is not parsed as UsageEvent here.
 */
export const UsageEnvelopeSchema = z.object({
  v: z.literal(2),
  events: z.array(z.unknown()).min(1),
});

export interface UsageEnvelope {
  v: 2;
  events: UsageEvent[];
}

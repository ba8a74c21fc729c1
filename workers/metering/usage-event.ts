/**
 * The usage event: the contract between the producer (proxy, via waitUntil) and the queue
 * consumer. Both sides validate with this one schema. The same pipeline carries the request audit
 * log (workers/audit/): an admitted request's usage event is also its audit entry, and an
 * authenticated request that is not metered (refused after authentication, or a tenant API call)
 * travels as a `RequestAuditRecord` in the same envelopes.
 */
import { z } from "zod";

/** Longest client address kept (an IPv6 address with a zone fits); a longer header value is dropped. */
export const MAX_CLIENT_IP = 64;
/** User-Agent headers are cut to this many characters. */
export const MAX_USER_AGENT = 256;

/** Longest path kept with a shadow mismatch sample (the `shadow_mismatches.path` column's bound). */
export const MAX_SHADOW_PATH = 512;
/** Longest header value kept in a shadow diff. */
export const MAX_SHADOW_HEADER_VALUE = 256;

const headerValue = z.string().max(MAX_SHADOW_HEADER_VALUE).nullable();

/**
 * A shadow copy's comparison (workers/edge/shadow.ts), carried by the sampled request's own usage
 * event so that the consumer counts it exactly when it stores that event (once per request id,
 * whatever the redeliveries). Latencies: to the end of each body (or the body bound).
 */
export const ShadowComparisonSchema = z.object({
  outcome: z.enum(["matched", "mismatched", "failed"]),
  /** Path and query as proxied, cut to MAX_SHADOW_PATH. */
  path: z.string().max(MAX_SHADOW_PATH),
  primaryMs: z.number().int().min(0),
  /** 0 when the copy failed. */
  shadowMs: z.number().int().min(0),
  /** What differed (a mismatch only). */
  diff: z
    .object({
      status: z.object({ primary: z.number().int(), shadow: z.number().int() }).optional(),
      body: z.object({ primary: z.string().max(64), shadow: z.string().max(64) }).optional(),
      headers: z.record(z.string().max(64), z.tuple([headerValue, headerValue])).optional(),
    })
    .optional(),
});

export type ShadowComparison = z.infer<typeof ShadowComparisonSchema>;

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
  /** The client's address (CF-Connecting-IP), for the request audit log. Absent in older messages. */
  clientIp: z.string().max(MAX_CLIENT_IP).optional(),
  /** The client's User-Agent, cut to MAX_USER_AGENT characters by the producer. Absent in older messages. */
  userAgent: z.string().max(MAX_USER_AGENT).optional(),
  /** A sampled request's shadow comparison (route with a `shadow`); absent otherwise. */
  shadow: ShadowComparisonSchema.optional(),
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

/** Longest tenant API path kept in the request audit log. */
export const MAX_AUDIT_ROUTE = 512;

/**
 * An authenticated request that produced no usage event, for the request audit log only: refused
 * after authentication (403, 402, 409, 422, 429 …), replayed from an Idempotency-Key, or a tenant
 * API call. Never a usage row: reconciliation counts admitted requests against usage rows.
 */
export const RequestAuditRecordSchema = z.object({
  /** = the request id; one audit entry per request, however often it is delivered. */
  id: z.string().regex(/^req_[0-9a-z]{26}$/),
  tenantId: z.string().min(1),
  keyId: z.string().min(1),
  method: z.string().min(1).max(16),
  /** The route-table prefix (proxy) or the tenant API path. */
  route: z.string().min(1).max(MAX_AUDIT_ROUTE),
  /** Status returned to the client. */
  status: z.number().int().min(100).max(599),
  /** ISO 8601 time the request arrived. */
  ts: z.iso.datetime(),
  clientIp: z.string().max(MAX_CLIENT_IP).optional(),
  userAgent: z.string().max(MAX_USER_AGENT).optional(),
});

export type RequestAuditRecord = z.infer<typeof RequestAuditRecordSchema>;

/**
 * What the producer puts on the queue: many usage events in one message (a Queue takes at most
 * 5,000 messages/s, so one message per request would cap metering at 5k req/s), and the audit
 * records of unmetered requests in the same messages (`audit`, absent when there are none). `v`
 * versions the envelope; a bare `UsageEvent` body is the legacy form, still accepted by the consumer
 * while messages from before the change are in flight. Events and records are checked one by one by
 * the consumer (a partly invalid message stores its valid ones), so they are not parsed here.
 */
export const UsageEnvelopeSchema = z
  .object({
    v: z.literal(2),
    events: z.array(z.unknown()),
    audit: z.array(z.unknown()).min(1).optional(),
  })
  .superRefine((envelope, ctx) => {
    // Events may be empty only when audit records fill the message.
    if (envelope.events.length === 0 && !envelope.audit)
      ctx.addIssue({
        code: "too_small",
        origin: "array",
        minimum: 1,
        inclusive: true,
        path: ["events"],
        input: envelope.events,
      });
  });

export interface UsageEnvelope {
  v: 2;
  events: UsageEvent[];
  audit?: RequestAuditRecord[];
}

/**
 * Wire schemas of the webhooks APIs (tenant and admin): endpoint input and output, deliveries with
 * their attempts, the dead-letter store; their serializers (a secret leaves only in the creation and
 * rotation responses); and the OpenAPI 3.1 `webhooks` section, one entry per event type of the
 * catalogue (workers/events/catalog.ts), with the Standard Webhooks headers.
 */
import { type OpenAPIHono, z } from "@hono/zod-openapi";
import type { WebhookAttempt, WebhookDelivery, WebhookEndpoint } from "../../schema";
import type { AppEnv } from "../env";
import { EVENT_DATA, EVENT_TYPES, type EventType } from "../events/catalog";
import { MAX_ENDPOINT_URL_LENGTH } from "../events/endpoint-url";
import { text } from "./schemas";
import type { DeadLetterView, DeliveryView } from "./webhook-endpoints";

const isoDate = z.string().openapi({ format: "date-time" });
const iso = (d: Date | null) => d?.toISOString() ?? null;

const EventTypeSchema = z
  .enum(EVENT_TYPES as [EventType, ...EventType[]])
  .openapi("WebhookEventType", { description: "One of the event types in this document's `webhooks`." });

const url = text().max(MAX_ENDPOINT_URL_LENGTH).openapi({
  description:
    "Where deliveries are POSTed: https only, a public host (no private, loopback, link-local or metadata address). Redirects are not followed.",
  example: "https://example.com/webhooks/gateway",
});
const eventTypes = z
  .array(EventTypeSchema)
  .max(EVENT_TYPES.length * 2)
  .openapi({ description: "Event types delivered here; empty = every type." });
const description = text().max(200);

export const WebhookEndpointInput = z
  .object({ url, eventTypes: eventTypes.default([]), description: description.default("") })
  .strict()
  .openapi("WebhookEndpointInput");

/** The changeable fields; only those sent change. Enabling clears `disabledReason` and the failure streak. */
export const WebhookEndpointPatch = z
  .object({ url, eventTypes, description, enabled: z.boolean() })
  .partial()
  .strict()
  .openapi("WebhookEndpointPatch");

export const WebhookEndpointSchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    url: z.string(),
    description: z.string(),
    eventTypes: z.array(z.string()),
    enabled: z.boolean(),
    disabledReason: z.string().nullable().openapi({
      description: "`gone` (the receiver answered 410), `failing` (5 days of failures), `tenant`.",
    }),
    failingSince: isoDate.nullable().openapi({ description: "First failed attempt since the last success." }),
    previousSecretExpiresAt: isoDate.nullable().openapi({
      description: "Until then deliveries also carry a signature with the secret before the last rotation.",
    }),
    createdAt: isoDate,
    updatedAt: isoDate,
  })
  .openapi("WebhookEndpoint");

export const CreatedWebhookEndpointSchema = WebhookEndpointSchema.extend({
  secret: z.string().openapi({
    description: "The `whsec_` signing secret (Standard Webhooks). Shown once; store it now.",
  }),
}).openapi("CreatedWebhookEndpoint");

export const WebhookAttemptSchema = z
  .object({
    attempt: z.number().int(),
    startedAt: isoDate,
    status: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "The receiver's status; null when none came." }),
    latencyMs: z.number().int(),
    responseExcerpt: z.string().nullable().openapi({ description: "The first bytes of the response body." }),
    error: z.string().nullable(),
  })
  .openapi("WebhookAttempt");

const deliveryFields = {
  id: z.string(),
  tenantId: z.string(),
  endpointId: z.string(),
  eventId: z.string().openapi({ description: "The `webhook-id` of every attempt." }),
  eventType: z.string(),
  status: z.enum(["pending", "succeeded", "dead", "cancelled"]),
  attemptCount: z.number().int(),
  nextAttemptAt: isoDate.nullable(),
  lastStatus: z.number().int().nullable(),
  lastError: z.string().nullable(),
  replays: z.number().int().openapi({ description: "How often it was sent again by hand." }),
  createdAt: isoDate,
  updatedAt: isoDate,
  attempts: z.array(WebhookAttemptSchema),
};

export const WebhookDeliverySchema = z.object(deliveryFields).openapi("WebhookDelivery");

export const DeadLetterSchema = z
  .object({ ...deliveryFields, endpointUrl: z.string() })
  .openapi("WebhookDeadLetter");

export const WebhookIdParams = z.object({ id: text().min(1).max(64) });
export const DeliveryIdParams = z.object({ deliveryId: text().min(1).max(64) });
export const EndpointDeliveryParams = WebhookIdParams.extend({ deliveryId: text().min(1).max(64) });
export const DeadLetterQuery = z.object({
  tenant: text().min(1).max(64).optional().openapi({ description: "Only this tenant's dead letters." }),
});

export function endpointOut(
  e: WebhookEndpoint,
  now: Date = new Date(),
): z.infer<typeof WebhookEndpointSchema> {
  const rotating = e.previousSecretUntil !== null && e.previousSecretUntil > now;
  return {
    id: e.id,
    tenantId: e.tenantId,
    url: e.url,
    description: e.description,
    eventTypes: e.eventTypes,
    enabled: e.enabled,
    disabledReason: e.disabledReason,
    failingSince: iso(e.failingSince),
    previousSecretExpiresAt: rotating ? iso(e.previousSecretUntil) : null,
    createdAt: e.createdAt.toISOString(),
    updatedAt: e.updatedAt.toISOString(),
  };
}

const attemptOut = (a: WebhookAttempt): z.infer<typeof WebhookAttemptSchema> => ({
  attempt: a.attempt,
  startedAt: a.startedAt.toISOString(),
  status: a.status,
  latencyMs: a.latencyMs,
  responseExcerpt: a.responseExcerpt,
  error: a.error,
});

const deliveryFieldsOut = (d: WebhookDelivery, eventType: string, attempts: WebhookAttempt[]) => ({
  id: d.id,
  tenantId: d.tenantId,
  endpointId: d.endpointId,
  eventId: d.eventId,
  eventType,
  status: d.status,
  attemptCount: d.attempts,
  nextAttemptAt: iso(d.nextAttemptAt),
  lastStatus: d.lastStatus,
  lastError: d.lastError,
  replays: d.replays,
  createdAt: d.createdAt.toISOString(),
  updatedAt: d.updatedAt.toISOString(),
  attempts: attempts.map(attemptOut),
});

export const deliveryOut = (v: DeliveryView): z.infer<typeof WebhookDeliverySchema> =>
  deliveryFieldsOut(v.delivery, v.eventType, v.attempts);

export const deadLetterOut = (v: DeadLetterView): z.infer<typeof DeadLetterSchema> => ({
  ...deliveryFieldsOut(v.delivery, v.eventType, v.attempts),
  endpointUrl: v.endpointUrl,
});

/** The Standard Webhooks headers every delivery carries. */
const DeliveryHeaders = z.object({
  "webhook-id": z.string().openapi({
    description: "The event's id (`evt_…`): the same on every retry of one event, so a receiver can dedupe.",
  }),
  "webhook-timestamp": z.string().openapi({ description: "Unix seconds when this attempt was signed." }),
  "webhook-signature": z.string().openapi({
    description:
      "Space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>` signatures with the endpoint's `whsec_` secret (the part after `whsec_`, base64-decoded, is the key). During a secret rotation a second signature with the previous secret is sent for 24 h. Verify with any Standard Webhooks library.",
  }),
});

/**
 * Adds the `webhooks` section to the OpenAPI 3.1 document: one POST per event type, whose body is
 * `{ type, timestamp, data }` with `data` the catalogue's schema.
 */
export function registerWebhookPayloads(app: OpenAPIHono<AppEnv>): void {
  for (const type of EVENT_TYPES) {
    app.openAPIRegistry.registerWebhook({
      method: "post",
      path: type,
      tags: ["Tenant API", "Webhooks"],
      summary: `${type} event`,
      description:
        "Sent to every enabled endpoint subscribed to this type. Answer 2xx within 15 s; anything else is retried (about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). 410 Gone disables the endpoint.",
      request: {
        headers: DeliveryHeaders,
        body: {
          required: true,
          content: {
            "application/json": {
              schema: z.object({
                type: z.literal(type),
                timestamp: isoDate.openapi({ description: "When the event happened." }),
                data: EVENT_DATA[type],
              }),
            },
          },
        },
      },
      responses: { 200: { description: "Received (any 2xx)" } },
    });
  }
}

/**
 * `POST /webhooks/stripe`: Stripe's events in. Stripe's signature is the only credential. In order:
 * the signing secret must be configured (else 503 `misconfigured`), the raw body is read up to
 * 1 MiB (else 413), its `Stripe-Signature` verified (else 400), then the event is applied once
 * (dispatch.ts). 200 tells Stripe the event is done with — applied, a duplicate, ignored or for an
 * unknown customer; a 503 (Stripe or the tenant object unreachable) makes Stripe deliver it again.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { json, problemResponses } from "../../api/schemas";
import { readUpTo } from "../../edge/read-body";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { openDb } from "../../shared/db";
import { stripeClient } from "../../shared/stripe";
import { dispatchEvent } from "./dispatch";
import { verifyStripeEvent } from "./verify";

export const WEBHOOK_PATH = "/webhooks/stripe";
/** Stripe events are small JSON documents; an invoice with many lines stays far below this. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

const Received = z
  .object({
    received: z.literal(true),
    duplicate: z.boolean(),
    outcome: z
      .enum(["applied", "ignored", "unknown_customer", "other_subscription", "missing_object"])
      .optional(),
  })
  .openapi("StripeWebhookReceived");

const route = createRoute({
  method: "post",
  path: WEBHOOK_PATH,
  tags: ["Stripe webhooks"],
  description:
    "Stripe's events (signed with the endpoint's whsec_ secret). Each event id is applied once; the invoice or subscription it names is re-read from Stripe, so the order of delivery does not matter.",
  request: { headers: z.object({ "stripe-signature": z.string().optional() }) },
  responses: {
    200: { description: "Done with: applied, a duplicate, or nothing to do", ...json(Received) },
    ...problemResponses(400, 413, 503),
  },
});

const tooLarge = () =>
  new GatewayError("payload_too_large", `Stripe webhook bodies are limited to ${WEBHOOK_BODY_LIMIT} bytes.`);

export function registerStripeWebhooks(app: OpenAPIHono<AppEnv>): void {
  app.openapi(route, async (c) => {
    const { stripeWebhookSecret, billingGracePeriodS } = c.var.config;
    if (!stripeWebhookSecret) {
      throw new GatewayError(
        "misconfigured",
        "The gateway is misconfigured: STRIPE_WEBHOOK_SECRET: is required to receive Stripe webhooks (the endpoint's whsec_ signing secret).",
      );
    }
    const declared = Number(c.req.header("content-length") ?? 0);
    if (declared > WEBHOOK_BODY_LIMIT) throw tooLarge();
    const body = await readUpTo(c.req.raw.body, WEBHOOK_BODY_LIMIT);
    if (!body) throw tooLarge();
    const raw = new TextDecoder().decode(body);
    const event = await verifyStripeEvent(raw, c.req.header("stripe-signature"), stripeWebhookSecret);

    const stripe = stripeClient(c.env);
    if (!stripe) {
      throw new GatewayError(
        "service_unavailable",
        "STRIPE_SECRET_KEY is not set: the gateway cannot read the event's object from Stripe. Retry later.",
      );
    }
    // Opened only for a verified event: a forged delivery costs no Postgres connection.
    const handle = openDb(c.env);
    let result: Awaited<ReturnType<typeof dispatchEvent>>;
    try {
      result = await dispatchEvent(event, {
        env: c.env,
        db: handle.db,
        stripe,
        now: Date.now(),
        graceMs: billingGracePeriodS * 1000,
      });
    } finally {
      c.executionCtx.waitUntil(handle.close());
    }
    return c.json(
      result.duplicate
        ? { received: true as const, duplicate: true }
        : { received: true as const, duplicate: false, outcome: result.outcome },
      200,
    );
  });
}

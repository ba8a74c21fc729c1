/**
 * `/gateway/v1/credits`: a prepaid tenant's own credits — balance and ledger (through row-level
 * security) — and `POST /gateway/v1/credits/checkout` to buy credit packs: a Stripe Checkout URL
 * to pay at; the credits arrive with `checkout.session.completed`. Buying needs a live `admin`-role
 * key; the tenant API's Idempotency-Key makes a retried purchase return the same session.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { creditsCheckout } from "../../audit/details";
import { createCreditCheckout, MAX_PACKS } from "../../billing/credits/checkout";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { withTenant } from "../../shared/db";
import { CreditsSchema, creditsView } from "../credits-view";
import { idempotent, tenantScope } from "../idempotency";
import { PageQuery } from "../pagination";
import { IdempotencyHeaders, json, problemResponses, replayedHeaders } from "../schemas";

const tags = ["Tenant API"];
const security = [{ apiKey: [] }];

const httpUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .optional()
  .openapi({ description: "Where Stripe sends the payer afterwards (default: the portal's billing page)." });

const CheckoutInput = z
  .object({
    packs: z
      .number()
      .int()
      .min(1)
      .max(MAX_PACKS)
      .openapi({ description: `Credit packs to buy, 1-${MAX_PACKS}.` }),
    successUrl: httpUrl,
    cancelUrl: httpUrl,
  })
  .strict()
  .openapi("CreditCheckoutInput");

const CheckoutSchema = z
  .object({
    id: z.string().openapi({ description: "The Stripe Checkout Session id." }),
    url: z.string().openapi({ description: "Where to pay." }),
    units: z.number().int(),
    amount: z.number().int().openapi({ description: "In the currency's minor unit." }),
    currency: z.string(),
  })
  .openapi("CreditCheckout");

const read = createRoute({
  method: "get",
  path: "/gateway/v1/credits",
  tags,
  security,
  request: { query: PageQuery },
  responses: {
    200: { description: "Your credit balance and ledger (newest first)", ...json(CreditsSchema) },
    ...problemResponses(400, 401),
  },
});

const checkout = createRoute({
  method: "post",
  path: "/gateway/v1/credits/checkout",
  tags,
  security,
  middleware: [idempotent(tenantScope)] as const,
  request: { headers: IdempotencyHeaders, body: { required: true, ...json(CheckoutInput) } },
  responses: {
    201: { description: "A Checkout Session to pay", headers: replayedHeaders, ...json(CheckoutSchema) },
    ...problemResponses(400, 401, 402, 403, 409, 422, 503),
  },
});

export function registerGatewayCredits(app: OpenAPIHono<AppEnv>): void {
  app.openapi(read, async (c) => {
    const tenantId = c.var.auth.tenant.id;
    const view = await withTenant(c.var.db, tenantId, (tx) =>
      creditsView(c.env, tx, tenantId, c.req.valid("query")),
    );
    return c.json(view, 200);
  });

  app.openapi(checkout, async (c) => {
    const { key, tenant } = c.var.auth;
    if (key.role !== "admin")
      throw new GatewayError("forbidden", "Only a key with the admin role can buy credits.");
    if (key.env !== "live") throw new GatewayError("forbidden", "A test key cannot buy credits.");
    const input = c.req.valid("json");
    const origin = new URL(c.req.url).origin;
    const session = await createCreditCheckout(c.env, c.var.db, tenant.id, {
      packs: input.packs,
      successUrl: input.successUrl ?? `${origin}/portal/billing?topup=success`,
      cancelUrl: input.cancelUrl ?? `${origin}/portal/billing?topup=cancel`,
      requestId: c.var.requestId,
    });
    c.set("audit", creditsCheckout(tenant.id, session));
    return c.json(session, 201);
  });
}

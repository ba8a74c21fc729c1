/**
 * `/admin/v1/tenants/:id/credits`: the operator's view of a prepaid tenant's credits (balance from the
 * tenant object, ledger from Postgres) and manual adjustments — a grant or a debit with a mandatory
 * reason and who made it, recorded as an `adjustment` entry and applied to the object in the same
 * request. A debit never takes the balance below zero: 409, nothing recorded.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { creditsAdjusted } from "../../audit/details";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { CreditEntrySchema, CreditsSchema, creditEntryOut, creditsView } from "../credits-view";
import { adminScope, idempotent } from "../idempotency";
import { PageQuery } from "../pagination";
import {
  IdempotencyHeaders,
  IdParam,
  json,
  problemResponses,
  replayedHeaders,
  adminSecurity as security,
  text,
} from "../schemas";
import { adjustCredits } from "../tenant-changes";

const tags = ["Admin: billing"];

const AdjustmentInput = z
  .object({
    units: z
      .number()
      .int()
      .min(-1_000_000_000)
      .max(1_000_000_000)
      .refine((u) => u !== 0, "must not be 0")
      .openapi({ description: "Units to add (positive) or take away (negative)." }),
    reason: text().trim().min(1).max(500),
    actor: text().trim().min(1).max(200).openapi({ description: "Who makes the adjustment." }),
  })
  .strict()
  .openapi("CreditAdjustment");

const read = createRoute({
  method: "get",
  path: "/admin/v1/tenants/{id}/credits",
  tags,
  security,
  request: { params: IdParam, query: PageQuery },
  responses: {
    200: { description: "Balance and ledger (newest first)", ...json(CreditsSchema) },
    ...problemResponses(400, 401, 404),
  },
});

const adjust = createRoute({
  method: "post",
  path: "/admin/v1/tenants/{id}/credits",
  tags,
  security,
  middleware: [idempotent(adminScope)] as const,
  request: {
    params: IdParam,
    headers: IdempotencyHeaders,
    body: { required: true, ...json(AdjustmentInput) },
  },
  responses: {
    201: {
      description: "Recorded and applied",
      headers: replayedHeaders,
      ...json(z.object({ entry: CreditEntrySchema, balance: z.number().int() })),
    },
    ...problemResponses(400, 401, 404, 409),
  },
});

export function registerAdminCredits(app: OpenAPIHono<AppEnv>): void {
  app.openapi(read, async (c) => {
    const { id } = c.req.valid("param");
    const tenant = await c.var.db.query.tenants.findFirst({
      where: (t, { eq }) => eq(t.id, id),
      columns: { id: true },
    });
    if (!tenant) throw new GatewayError("not_found", "No such tenant.");
    return c.json(await creditsView(c.env, c.var.db, id, c.req.valid("query")), 200);
  });

  app.openapi(adjust, async (c) => {
    const { id } = c.req.valid("param");
    const { entry, balance } = await adjustCredits(c.env, c.var.db, id, c.req.valid("json"));
    c.set("audit", creditsAdjusted(id, entry, balance));
    return c.json({ entry: creditEntryOut(entry), balance }, 201);
  });
}

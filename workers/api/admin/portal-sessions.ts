/**
 * `POST /admin/v1/tenants/:id/portal-sessions`: a one-time link into the developer portal, for the
 * operator's own app to hand to its customer (as Stripe's billing-portal sessions are). The link is
 * single use and lasts 15 minutes; opening it exchanges the code for a 24 h portal session cookie
 * (workers/web/portal/enter.tsx). Only the code's hash is kept.
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { portalLinkCreated } from "../../audit/details";
import type { AppEnv } from "../../env";
import { IdParam, json, problemResponses, adminSecurity as security } from "../schemas";
import { mintPortalLink } from "../tenant-changes";

const PortalSessionSchema = z
  .object({
    url: z.string().openapi({ description: "Open once, within 15 minutes, to sign in to the portal." }),
    expiresAt: z.string().openapi({ description: "ISO 8601: when the link stops working if unused." }),
  })
  .openapi("PortalSession");

const mint = createRoute({
  method: "post",
  path: "/admin/v1/tenants/{id}/portal-sessions",
  tags: ["Admin: tenants"],
  security,
  request: { params: IdParam },
  responses: {
    201: { description: "A one-time portal link", ...json(PortalSessionSchema) },
    ...problemResponses(400, 401, 404),
  },
});

export function registerAdminPortalSessions(app: OpenAPIHono<AppEnv>): void {
  app.openapi(mint, async (c) => {
    const { id } = c.req.valid("param");
    const { url, expiresAt } = await mintPortalLink(c.var.db, id, c.req.url);
    c.set("audit", portalLinkCreated(id, expiresAt));
    return c.json({ url, expiresAt: expiresAt.toISOString() }, 201);
  });
}

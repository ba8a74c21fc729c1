/**
 * `/gateway/v1/keys`: a tenant lists its own keys with its own API key. The query carries no
 * tenant filter of its own: row-level security (withTenant) is what limits it to the caller.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { desc } from "drizzle-orm";
import { apiKeys } from "../../../schema";
import type { AppEnv } from "../../env";
import { withTenant } from "../../lib/db";
import { json, KeySchema, keyOut, listOf, problemResponses } from "../schemas";

const list = createRoute({
  method: "get",
  path: "/gateway/v1/keys",
  tags: ["Tenant API"],
  security: [{ apiKey: [] }],
  responses: {
    200: { description: "Your keys (prefix and last 4 only)", ...json(listOf(KeySchema)) },
    ...problemResponses(401),
  },
});

export function registerGatewayKeys(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => {
    const rows = await withTenant(c.var.db, c.var.auth.tenant.id, (tx) =>
      tx.select().from(apiKeys).orderBy(desc(apiKeys.createdAt)),
    );
    return c.json({ data: rows.map(keyOut) }, 200);
  });
}

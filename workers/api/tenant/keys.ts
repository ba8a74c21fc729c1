/**
 * `/gateway/v1/keys`: a tenant manages its own keys with its own API key. Reads carry no tenant
 * filter of their own: row-level security (withTenant) is what limits them to the caller, so a key
 * of another tenant is simply "not found". Creating and revoking need an `admin`-role key.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import type { Context } from "hono";
import { apiKeys } from "../../../schema";
import { keyCreated, keyRevoked } from "../../audit/details";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { withTenant } from "../../shared/db";
import { idempotent, tenantScope } from "../idempotency";
import { createKey, revokeKey } from "../key-lifecycle";
import { keyset, PageQuery, pageOf } from "../pagination";
import {
  CreatedKeySchema,
  IdempotencyHeaders,
  IdParam,
  json,
  KeyInput,
  KeySchema,
  keyOut,
  problemResponses,
  replayedHeaders,
} from "../schemas";
import { checkKeyGrant } from "./door";

const tags = ["Tenant API"];
const security = [{ apiKey: [] }];

const list = createRoute({
  method: "get",
  path: "/gateway/v1/keys",
  tags,
  security,
  request: { query: PageQuery },
  responses: {
    200: { description: "Your keys (prefix and last 4 only), newest first", ...json(pageOf(KeySchema)) },
    ...problemResponses(400, 401),
  },
});

const create = createRoute({
  method: "post",
  path: "/gateway/v1/keys",
  tags,
  security,
  middleware: [idempotent(tenantScope)] as const,
  request: { headers: IdempotencyHeaders, body: { required: true, ...json(KeyInput) } },
  responses: {
    201: {
      description: "Created (plaintext shown once, and in a replay of the same Idempotency-Key)",
      headers: replayedHeaders,
      ...json(CreatedKeySchema),
    },
    ...problemResponses(400, 401, 403, 409, 422),
  },
});

const revoke = createRoute({
  method: "delete",
  path: "/gateway/v1/keys/{id}",
  tags,
  security,
  request: { params: IdParam },
  responses: { 200: { description: "Revoked", ...json(KeySchema) }, ...problemResponses(401, 403, 404) },
});

function requireAdminKey(c: Context<AppEnv>): void {
  if (c.var.auth.key.role !== "admin") {
    throw new GatewayError("forbidden", "Only a key with the admin role can create or revoke keys.");
  }
}

export function registerGatewayKeys(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => {
    const page = keyset("keys", apiKeys, c.req.valid("query"), "desc");
    const rows = await withTenant(c.var.db, c.var.auth.tenant.id, (tx) =>
      tx
        .select({ row: apiKeys, position: page.position })
        .from(apiKeys)
        .where(page.where)
        .orderBy(...page.orderBy)
        .limit(page.take),
    );
    return c.json(
      page.page(rows, keyOut, (k) => k.id),
      200,
    );
  });

  app.openapi(create, async (c) => {
    requireAdminKey(c);
    const input = c.req.valid("json");
    checkKeyGrant(c.var.auth.key, input, "create");
    const { row, plaintext } = await createKey(c.var.db, c.env, c.var.auth.tenant.id, input);
    c.set("audit", keyCreated(row));
    return c.json({ ...keyOut(row), key: plaintext }, 201);
  });

  app.openapi(revoke, async (c) => {
    requireAdminKey(c);
    const { id } = c.req.valid("param");
    const own = await withTenant(c.var.db, c.var.auth.tenant.id, (tx) =>
      tx.select().from(apiKeys).where(eq(apiKeys.id, id)),
    );
    const target = own[0];
    if (!target) throw new GatewayError("not_found", "No such key.");
    checkKeyGrant(c.var.auth.key, target, "revoke");
    const row = await revokeKey(c.var.db, c.env, id);
    if (!row) throw new GatewayError("not_found", "No such key.");
    c.set("audit", keyRevoked(target, row));
    return c.json(keyOut(row), 200);
  });
}

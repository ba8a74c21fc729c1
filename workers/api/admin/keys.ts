/**
 * Keys: `/admin/v1/tenants/{id}/keys` (create live/test, list by prefix + last 4 only) and
 * `/admin/v1/keys/{id}` (read, update with PATCH, revoke with DELETE, rotate with a grace period for
 * the old key).
 */
import { createRoute, type OpenAPIHono, z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { apiKeys, tenants } from "../../../schema";
import { keyCreated, keyRevoked, keyRotated, keyUpdated } from "../../audit/details";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import type { Db } from "../../shared/db";
import { adminScope, idempotent } from "../idempotency";
import { createKey, revokeKey, rotateKey, updateKey } from "../key-lifecycle";
import { keyset, PageQuery, pageOf } from "../pagination";
import {
  CreatedKeySchema,
  IdempotencyHeaders,
  IdParam,
  json,
  KeyInput,
  KeyPatch,
  KeySchema,
  keyOut,
  problemResponses,
  RotateInput,
  replayedHeaders,
  adminSecurity as security,
} from "../schemas";

const tags = ["Admin: keys"];

const create = createRoute({
  method: "post",
  path: "/admin/v1/tenants/{id}/keys",
  tags,
  security,
  middleware: [idempotent(adminScope)] as const,
  request: { params: IdParam, headers: IdempotencyHeaders, body: { required: true, ...json(KeyInput) } },
  responses: {
    201: {
      description: "Created (plaintext shown once, and in a replay of the same Idempotency-Key)",
      headers: replayedHeaders,
      ...json(CreatedKeySchema),
    },
    ...problemResponses(400, 401, 404, 409, 422),
  },
});

const list = createRoute({
  method: "get",
  path: "/admin/v1/tenants/{id}/keys",
  tags,
  security,
  request: { params: IdParam, query: PageQuery },
  responses: {
    200: { description: "The tenant's keys, newest first", ...json(pageOf(KeySchema)) },
    ...problemResponses(400, 401, 404),
  },
});

const read = createRoute({
  method: "get",
  path: "/admin/v1/keys/{id}",
  tags,
  security,
  request: { params: IdParam },
  responses: { 200: { description: "The key", ...json(KeySchema) }, ...problemResponses(401, 404) },
});

const update = createRoute({
  method: "patch",
  path: "/admin/v1/keys/{id}",
  tags,
  security,
  request: { params: IdParam, body: { required: true, ...json(KeyPatch) } },
  responses: {
    200: { description: "Updated; applies on the next request everywhere", ...json(KeySchema) },
    ...problemResponses(400, 401, 404, 409),
  },
});

const revoke = createRoute({
  method: "delete",
  path: "/admin/v1/keys/{id}",
  tags,
  security,
  request: { params: IdParam },
  responses: { 200: { description: "Revoked", ...json(KeySchema) }, ...problemResponses(401, 404) },
});

const rotate = createRoute({
  method: "post",
  path: "/admin/v1/keys/{id}/rotate",
  tags,
  security,
  middleware: [idempotent(adminScope)] as const,
  request: {
    params: IdParam,
    headers: IdempotencyHeaders,
    body: { required: false, ...json(RotateInput) },
  },
  responses: {
    201: {
      description: "The new key (shown once) and the old one with its grace-period expiry",
      headers: replayedHeaders,
      ...json(z.object({ key: CreatedKeySchema, previous: KeySchema })),
    },
    ...problemResponses(400, 401, 404, 409, 422),
  },
});

/**
 * The key as it is before a change, for the audit trail's before/after. Read ahead of the service's
 * own write: a concurrent change in between would show in neither entry's before.
 */
const keyRow = (db: Db, id: string) => db.query.apiKeys.findFirst({ where: eq(apiKeys.id, id) });

export function registerAdminKeys(app: OpenAPIHono<AppEnv>): void {
  app.openapi(create, async (c) => {
    const { id } = c.req.valid("param");
    const input = c.req.valid("json");
    const tenant = await c.var.db.query.tenants.findFirst({ where: eq(tenants.id, id) });
    if (!tenant) throw new GatewayError("not_found", "No such tenant.");
    const { row, plaintext } = await createKey(c.var.db, c.env, id, input);
    c.set("audit", keyCreated(row));
    return c.json({ ...keyOut(row), key: plaintext }, 201);
  });

  app.openapi(list, async (c) => {
    const { id } = c.req.valid("param");
    const tenant = await c.var.db.query.tenants.findFirst({ where: eq(tenants.id, id) });
    if (!tenant) throw new GatewayError("not_found", "No such tenant.");
    const page = keyset("tenant-keys", apiKeys, c.req.valid("query"), "desc");
    const rows = await c.var.db
      .select({ row: apiKeys, position: page.position })
      .from(apiKeys)
      .where(and(eq(apiKeys.tenantId, id), page.where))
      .orderBy(...page.orderBy)
      .limit(page.take);
    return c.json(
      page.page(rows, keyOut, (k) => k.id),
      200,
    );
  });

  app.openapi(read, async (c) => {
    const row = await c.var.db.query.apiKeys.findFirst({ where: eq(apiKeys.id, c.req.valid("param").id) });
    if (!row) throw new GatewayError("not_found", "No such key.");
    return c.json(keyOut(row), 200);
  });

  app.openapi(update, async (c) => {
    const { id } = c.req.valid("param");
    const before = await keyRow(c.var.db, id);
    const row = await updateKey(c.var.db, c.env, id, c.req.valid("json"));
    if (row === undefined) throw new GatewayError("not_found", "No such key.");
    if (row === null) throw new GatewayError("conflict", "The key is revoked; issue a new one instead.");
    c.set("audit", keyUpdated(before, row));
    return c.json(keyOut(row), 200);
  });

  app.openapi(revoke, async (c) => {
    const { id } = c.req.valid("param");
    const before = await keyRow(c.var.db, id);
    const row = await revokeKey(c.var.db, c.env, id);
    if (!row) throw new GatewayError("not_found", "No such key.");
    c.set("audit", keyRevoked(before, row));
    return c.json(keyOut(row), 200);
  });

  app.openapi(rotate, async (c) => {
    const { id } = c.req.valid("param");
    const { gracePeriodSeconds } = RotateInput.parse(c.req.valid("json") ?? {});
    const before = await keyRow(c.var.db, id);
    const result = await rotateKey(c.var.db, c.env, id, gracePeriodSeconds);
    if (result === undefined) throw new GatewayError("not_found", "No such key.");
    if (result === null)
      throw new GatewayError("conflict", "The key is revoked or expired; issue a new one instead.");
    c.set("audit", keyRotated(before, result.previous, result.created.row));
    return c.json(
      {
        key: { ...keyOut(result.created.row), key: result.created.plaintext },
        previous: keyOut(result.previous),
      },
      201,
    );
  });
}

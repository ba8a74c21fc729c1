/**
 * `/gateway/v1/webhooks`: a tenant manages its own webhook endpoints and reads their delivery log
 * with its own API key (workers/api/webhook-endpoints.ts does the work, under the tenant's row-level
 * security: another tenant's endpoint or delivery is "not found" on every route).
 *
 * Reading takes any key; changing anything takes a live key of the admin role. Test keys may read
 * but not change: an endpoint receives the events of both environments, so it is not sandbox data.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import { idempotent, tenantScope } from "../idempotency";
import { PageQuery, pageOf } from "../pagination";
import { IdempotencyHeaders, json, problemResponses, replayedHeaders } from "../schemas";
import { endpointAudit, endpointChanges, retryAudit, testAudit } from "../webhook-audit";
import {
  createEndpoint,
  deleteEndpoint,
  getEndpoint,
  listDeliveries,
  listEndpoints,
  retryDelivery,
  rotateSecret,
  sendTest,
  updateEndpoint,
  type Viewer,
} from "../webhook-endpoints";
import {
  CreatedWebhookEndpointSchema,
  deliveryOut,
  EndpointDeliveryParams,
  endpointOut,
  WebhookDeliverySchema,
  WebhookEndpointInput,
  WebhookEndpointPatch,
  WebhookEndpointSchema,
  WebhookIdParams,
} from "../webhook-schemas";

const tags = ["Tenant API"];
const security = [{ apiKey: [] }];
const base = "/gateway/v1/webhooks";

const list = createRoute({
  method: "get",
  path: base,
  tags,
  security,
  request: { query: PageQuery },
  responses: {
    200: {
      description: "Your webhook endpoints, newest first (secrets never shown)",
      ...json(pageOf(WebhookEndpointSchema)),
    },
    ...problemResponses(400, 401),
  },
});

const create = createRoute({
  method: "post",
  path: base,
  tags,
  security,
  middleware: [idempotent(tenantScope)] as const,
  request: { headers: IdempotencyHeaders, body: { required: true, ...json(WebhookEndpointInput) } },
  responses: {
    201: {
      description: "Created; its signing secret is shown once",
      headers: replayedHeaders,
      ...json(CreatedWebhookEndpointSchema),
    },
    ...problemResponses(400, 401, 403, 409, 422),
  },
});

const read = createRoute({
  method: "get",
  path: `${base}/{id}`,
  tags,
  security,
  request: { params: WebhookIdParams },
  responses: {
    200: { description: "The endpoint", ...json(WebhookEndpointSchema) },
    ...problemResponses(401, 404),
  },
});

const update = createRoute({
  method: "patch",
  path: `${base}/{id}`,
  tags,
  security,
  request: { params: WebhookIdParams, body: { required: true, ...json(WebhookEndpointPatch) } },
  responses: {
    200: { description: "Updated", ...json(WebhookEndpointSchema) },
    ...problemResponses(400, 401, 403, 404),
  },
});

const remove = createRoute({
  method: "delete",
  path: `${base}/{id}`,
  tags,
  security,
  request: { params: WebhookIdParams },
  responses: {
    200: { description: "Deleted, with its delivery log", ...json(WebhookEndpointSchema) },
    ...problemResponses(401, 403, 404),
  },
});

const rotate = createRoute({
  method: "post",
  path: `${base}/{id}/rotate-secret`,
  tags,
  security,
  request: { params: WebhookIdParams },
  responses: {
    200: {
      description: "The new secret (shown once); the previous one also signs deliveries for 24 h",
      ...json(CreatedWebhookEndpointSchema),
    },
    ...problemResponses(401, 403, 404),
  },
});

const test = createRoute({
  method: "post",
  path: `${base}/{id}/test`,
  tags,
  security,
  request: { params: WebhookIdParams },
  responses: {
    202: {
      description: "A `webhook.test` event queued for this endpoint only",
      ...json(WebhookDeliverySchema),
    },
    ...problemResponses(401, 403, 404),
  },
});

const deliveries = createRoute({
  method: "get",
  path: `${base}/{id}/deliveries`,
  tags,
  security,
  request: { params: WebhookIdParams, query: PageQuery },
  responses: {
    200: {
      description: "The endpoint's deliveries, newest first, each with its attempts",
      ...json(pageOf(WebhookDeliverySchema)),
    },
    ...problemResponses(400, 401, 404),
  },
});

const retry = createRoute({
  method: "post",
  path: `${base}/{id}/deliveries/{deliveryId}/retry`,
  tags,
  security,
  request: { params: EndpointDeliveryParams },
  responses: {
    202: { description: "Queued again (due now; `replays` + 1)", ...json(WebhookDeliverySchema) },
    ...problemResponses(401, 403, 404, 409),
  },
});

/** Changing a webhook takes a live admin-role key. */
function requireWriteKey(c: Context<AppEnv>): void {
  const key = c.var.auth.key;
  if (key.role !== "admin")
    throw new GatewayError("forbidden", "Only a key with the admin role can change webhook endpoints.");
  if (key.env === "test")
    throw new GatewayError("forbidden", "A test key can read webhook endpoints but not change them.");
}

const viewerOf = (c: Context<AppEnv>): Viewer => ({ tenantId: c.var.auth.tenant.id });

export function registerGatewayWebhooks(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => {
    const tenantId = c.var.auth.tenant.id;
    const { rows, page } = await listEndpoints(c.var.db, viewerOf(c), tenantId, c.req.valid("query"));
    return c.json(
      page.page(
        rows,
        (e) => endpointOut(e),
        (e) => e.id,
      ),
      200,
    );
  });

  app.openapi(create, async (c) => {
    requireWriteKey(c);
    const tenantId = c.var.auth.tenant.id;
    const { endpoint, secret } = await createEndpoint(c.var.db, viewerOf(c), tenantId, c.req.valid("json"), {
      allowLocalhost: c.var.config.webhookAllowLocalhost,
    });
    c.set("audit", endpointAudit("create", endpoint, endpointChanges(null, endpoint)));
    return c.json({ ...endpointOut(endpoint), secret }, 201);
  });

  app.openapi(read, async (c) => {
    const endpoint = await getEndpoint(c.var.db, viewerOf(c), c.req.valid("param").id);
    return c.json(endpointOut(endpoint), 200);
  });

  app.openapi(update, async (c) => {
    requireWriteKey(c);
    const { before, after } = await updateEndpoint(
      c.var.db,
      viewerOf(c),
      c.req.valid("param").id,
      c.req.valid("json"),
      { allowLocalhost: c.var.config.webhookAllowLocalhost },
    );
    c.set("audit", endpointAudit("update", after, endpointChanges(before, after)));
    return c.json(endpointOut(after), 200);
  });

  app.openapi(remove, async (c) => {
    requireWriteKey(c);
    const endpoint = await deleteEndpoint(c.var.db, viewerOf(c), c.req.valid("param").id);
    c.set("audit", endpointAudit("delete", endpoint, endpointChanges(endpoint, null)));
    return c.json(endpointOut(endpoint), 200);
  });

  app.openapi(rotate, async (c) => {
    requireWriteKey(c);
    const { endpoint, secret } = await rotateSecret(c.var.db, viewerOf(c), c.req.valid("param").id);
    c.set("audit", endpointAudit("rotate_secret", endpoint));
    return c.json({ ...endpointOut(endpoint), secret }, 200);
  });

  app.openapi(test, async (c) => {
    requireWriteKey(c);
    const view = await sendTest(c.var.db, c.env, viewerOf(c), c.req.valid("param").id);
    c.set("audit", testAudit(view));
    return c.json(deliveryOut(view), 202);
  });

  app.openapi(deliveries, async (c) => {
    const { rows, page } = await listDeliveries(
      c.var.db,
      viewerOf(c),
      c.req.valid("param").id,
      c.req.valid("query"),
    );
    return c.json(
      page.page(rows, deliveryOut, (d) => d.delivery.id),
      200,
    );
  });

  app.openapi(retry, async (c) => {
    requireWriteKey(c);
    const { id, deliveryId } = c.req.valid("param");
    const result = await retryDelivery(c.var.db, c.env, viewerOf(c), deliveryId, id);
    c.set("audit", retryAudit(result));
    return c.json(deliveryOut(result.after), 202);
  });
}

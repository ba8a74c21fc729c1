/**
 * Webhooks of any tenant, for the operator: `/admin/v1/tenants/{id}/webhooks` (list, create),
 * `/admin/v1/webhooks/{id}` (read, update, delete, rotate-secret, test, deliveries),
 * `/admin/v1/webhooks/deliveries/{deliveryId}/retry`, and the dead-letter store
 * `/admin/v1/webhooks/dead-letters` (deliveries whose retries are exhausted; replay = retry).
 * The same service as the tenant routes (workers/api/webhook-endpoints.ts), as the operator.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { tenants } from "../../../schema";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import type { Db } from "../../shared/db";
import { adminScope, idempotent } from "../idempotency";
import { PageQuery, pageOf } from "../pagination";
import {
  IdempotencyHeaders,
  IdParam,
  json,
  problemResponses,
  replayedHeaders,
  adminSecurity as security,
} from "../schemas";
import { endpointAudit, endpointChanges, retryAudit, testAudit } from "../webhook-audit";
import {
  createEndpoint,
  deleteEndpoint,
  getEndpoint,
  listDeadLetters,
  listDeliveries,
  listEndpoints,
  retryDelivery,
  rotateSecret,
  sendTest,
  updateEndpoint,
} from "../webhook-endpoints";
import {
  CreatedWebhookEndpointSchema,
  DeadLetterQuery,
  DeadLetterSchema,
  DeliveryIdParams,
  deadLetterOut,
  deliveryOut,
  endpointOut,
  WebhookDeliverySchema,
  WebhookEndpointInput,
  WebhookEndpointPatch,
  WebhookEndpointSchema,
  WebhookIdParams,
} from "../webhook-schemas";

const tags = ["Admin: webhooks"];

const list = createRoute({
  method: "get",
  path: "/admin/v1/tenants/{id}/webhooks",
  tags,
  security,
  request: { params: IdParam, query: PageQuery },
  responses: {
    200: {
      description: "The tenant's webhook endpoints, newest first",
      ...json(pageOf(WebhookEndpointSchema)),
    },
    ...problemResponses(400, 401, 404),
  },
});

const create = createRoute({
  method: "post",
  path: "/admin/v1/tenants/{id}/webhooks",
  tags,
  security,
  middleware: [idempotent(adminScope)] as const,
  request: {
    params: IdParam,
    headers: IdempotencyHeaders,
    body: { required: true, ...json(WebhookEndpointInput) },
  },
  responses: {
    201: {
      description: "Created; its signing secret is shown once",
      headers: replayedHeaders,
      ...json(CreatedWebhookEndpointSchema),
    },
    ...problemResponses(400, 401, 404, 409, 422),
  },
});

const deadLetters = createRoute({
  method: "get",
  path: "/admin/v1/webhooks/dead-letters",
  tags,
  security,
  request: { query: PageQuery.extend(DeadLetterQuery.shape) },
  responses: {
    200: {
      description:
        "Deliveries whose retries are exhausted, most recent first, with every attempt. Replay one with its retry route.",
      ...json(pageOf(DeadLetterSchema)),
    },
    ...problemResponses(400, 401),
  },
});

const retry = createRoute({
  method: "post",
  path: "/admin/v1/webhooks/deliveries/{deliveryId}/retry",
  tags,
  security,
  request: { params: DeliveryIdParams },
  responses: {
    202: { description: "Queued again (due now; `replays` + 1)", ...json(WebhookDeliverySchema) },
    ...problemResponses(401, 404, 409),
  },
});

const read = createRoute({
  method: "get",
  path: "/admin/v1/webhooks/{id}",
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
  path: "/admin/v1/webhooks/{id}",
  tags,
  security,
  request: { params: WebhookIdParams, body: { required: true, ...json(WebhookEndpointPatch) } },
  responses: {
    200: { description: "Updated", ...json(WebhookEndpointSchema) },
    ...problemResponses(400, 401, 404),
  },
});

const remove = createRoute({
  method: "delete",
  path: "/admin/v1/webhooks/{id}",
  tags,
  security,
  request: { params: WebhookIdParams },
  responses: {
    200: { description: "Deleted, with its delivery log", ...json(WebhookEndpointSchema) },
    ...problemResponses(401, 404),
  },
});

const rotate = createRoute({
  method: "post",
  path: "/admin/v1/webhooks/{id}/rotate-secret",
  tags,
  security,
  request: { params: WebhookIdParams },
  responses: {
    200: {
      description: "The new secret (shown once); the previous one also signs deliveries for 24 h",
      ...json(CreatedWebhookEndpointSchema),
    },
    ...problemResponses(401, 404),
  },
});

const test = createRoute({
  method: "post",
  path: "/admin/v1/webhooks/{id}/test",
  tags,
  security,
  request: { params: WebhookIdParams },
  responses: {
    202: {
      description: "A `webhook.test` event queued for this endpoint only",
      ...json(WebhookDeliverySchema),
    },
    ...problemResponses(401, 404),
  },
});

const deliveries = createRoute({
  method: "get",
  path: "/admin/v1/webhooks/{id}/deliveries",
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

async function requireTenant(db: Db, id: string): Promise<void> {
  const tenant = await db.query.tenants.findFirst({ where: eq(tenants.id, id), columns: { id: true } });
  if (!tenant) throw new GatewayError("not_found", "No such tenant.");
}

export function registerAdminWebhooks(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => {
    const { id } = c.req.valid("param");
    await requireTenant(c.var.db, id);
    const { rows, page } = await listEndpoints(c.var.db, "operator", id, c.req.valid("query"));
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
    const { id } = c.req.valid("param");
    await requireTenant(c.var.db, id);
    const { endpoint, secret } = await createEndpoint(c.var.db, "operator", id, c.req.valid("json"), {
      allowLocalhost: c.var.config.webhookAllowLocalhost,
    });
    c.set("audit", endpointAudit("create", endpoint, endpointChanges(null, endpoint)));
    return c.json({ ...endpointOut(endpoint), secret }, 201);
  });

  // Before `/admin/v1/webhooks/{id}`, which would otherwise take `dead-letters` for an id.
  app.openapi(deadLetters, async (c) => {
    const { tenant, ...query } = c.req.valid("query");
    const { rows, page } = await listDeadLetters(c.var.db, tenant, query);
    return c.json(
      page.page(rows, deadLetterOut, (d) => d.delivery.id),
      200,
    );
  });

  app.openapi(retry, async (c) => {
    const result = await retryDelivery(c.var.db, c.env, "operator", c.req.valid("param").deliveryId);
    c.set("audit", retryAudit(result));
    return c.json(deliveryOut(result.after), 202);
  });

  app.openapi(read, async (c) => {
    const endpoint = await getEndpoint(c.var.db, "operator", c.req.valid("param").id);
    return c.json(endpointOut(endpoint), 200);
  });

  app.openapi(update, async (c) => {
    const { before, after } = await updateEndpoint(
      c.var.db,
      "operator",
      c.req.valid("param").id,
      c.req.valid("json"),
      { allowLocalhost: c.var.config.webhookAllowLocalhost },
    );
    c.set("audit", endpointAudit("update", after, endpointChanges(before, after)));
    return c.json(endpointOut(after), 200);
  });

  app.openapi(remove, async (c) => {
    const endpoint = await deleteEndpoint(c.var.db, "operator", c.req.valid("param").id);
    c.set("audit", endpointAudit("delete", endpoint, endpointChanges(endpoint, null)));
    return c.json(endpointOut(endpoint), 200);
  });

  app.openapi(rotate, async (c) => {
    const { endpoint, secret } = await rotateSecret(c.var.db, "operator", c.req.valid("param").id);
    c.set("audit", endpointAudit("rotate_secret", endpoint));
    return c.json({ ...endpointOut(endpoint), secret }, 200);
  });

  app.openapi(test, async (c) => {
    const view = await sendTest(c.var.db, c.env, "operator", c.req.valid("param").id);
    c.set("audit", testAudit(view));
    return c.json(deliveryOut(view), 202);
  });

  app.openapi(deliveries, async (c) => {
    const { rows, page } = await listDeliveries(
      c.var.db,
      "operator",
      c.req.valid("param").id,
      c.req.valid("query"),
    );
    return c.json(
      page.page(rows, deliveryOut, (d) => d.delivery.id),
      200,
    );
  });
}

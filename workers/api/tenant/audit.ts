/**
 * `/gateway/v1/audit` and `/gateway/v1/audit/export`: a tenant reads and exports its own audit
 * trail (both logs, `log=`) with its own API key. No tenant filter of their own: row-level security
 * (withTenant, keyed on the chain) is what limits them to the caller's chain.
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import { exportEntries, LIST_ID, LIST_TIME, listEntries } from "../../audit/queries";
import type { AppEnv } from "../../env";
import { withTenant } from "../../shared/db";
import {
  AuditPageSchema,
  exportAnswer,
  exportResponse,
  filtersOf,
  TenantExportQuery,
  TenantListQuery,
} from "../audit-schemas";
import { keyset } from "../pagination";
import { json, problemResponses } from "../schemas";

const tags = ["Tenant API"];
const security = [{ apiKey: [] }];

const list = createRoute({
  method: "get",
  path: "/gateway/v1/audit",
  tags,
  security,
  request: { query: TenantListQuery },
  responses: {
    200: { description: "Your audit entries of the chosen log, newest first", ...json(AuditPageSchema) },
    ...problemResponses(400, 401),
  },
});

const exported = createRoute({
  method: "get",
  path: "/gateway/v1/audit/export",
  tags,
  security,
  request: { query: TenantExportQuery },
  responses: { 200: exportResponse, ...problemResponses(400, 401, 429) },
});

export function registerGatewayAudit(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = keyset(`audit-${q.log}`, { createdAt: LIST_TIME, id: LIST_ID }, q, "desc");
    const filters = filtersOf(q);
    const answer = await withTenant(c.var.db, c.var.auth.tenant.id, (tx) =>
      listEntries(tx, q.log, filters, page),
    );
    return c.json(answer, 200);
  });

  app.openapi(exported, async (c) => {
    const q = c.req.valid("query");
    const tenant = c.var.auth.tenant;
    const stream = exportEntries(c.env, tenant.id, q.log, filtersOf(q), q.format);
    return exportAnswer(stream, q.format, `audit-${q.log}-${tenant.slug}`) as never;
  });
}

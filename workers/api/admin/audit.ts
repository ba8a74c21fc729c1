/**
 * The audit trail for the operator: `/admin/v1/audit` (entries of any chain, filtered, newest
 * first), `/admin/v1/audit/export` (streamed CSV or NDJSON, chain by chain in seq order) and
 * `/admin/v1/audit/verify` (the chains recomputed from the database, anchored on what retention left).
 */
import { createRoute, type OpenAPIHono } from "@hono/zod-openapi";
import {
  exportEntries,
  LIST_ID,
  LIST_TIME,
  listEntries,
  VERIFY_MAX_ENTRIES,
  VerifyRangeTooLarge,
  verifyRange,
} from "../../audit/queries";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import {
  AdminExportQuery,
  AdminListQuery,
  AuditPageSchema,
  exportAnswer,
  exportResponse,
  filtersOf,
  VerificationSchema,
  VerifyQuery,
} from "../audit-schemas";
import { keyset } from "../pagination";
import { json, problemResponses, adminSecurity as security } from "../schemas";

const tags = ["Admin: audit"];

const list = createRoute({
  method: "get",
  path: "/admin/v1/audit",
  tags,
  security,
  request: { query: AdminListQuery },
  responses: {
    200: { description: "Entries of the chosen log, newest first", ...json(AuditPageSchema) },
    ...problemResponses(400, 401),
  },
});

const exported = createRoute({
  method: "get",
  path: "/admin/v1/audit/export",
  tags,
  security,
  request: { query: AdminExportQuery },
  responses: { 200: exportResponse, ...problemResponses(400, 401) },
});

const verify = createRoute({
  method: "get",
  path: "/admin/v1/audit/verify",
  tags,
  security,
  description: `Recomputes every hash of the chains in the range (one tenant's with \`tenant\`). Without \`from\`, each chain must start at its first kept entry and link to the anchor retention left (64 zeros when nothing was pruned); without \`to\`, it must end at the chain's recorded head. At most ${VERIFY_MAX_ENTRIES} entries per request: a larger range answers 400 (narrow it with tenant, from and to).`,
  request: { query: VerifyQuery },
  responses: {
    200: { description: "ok, or the first entry that breaks the chain", ...json(VerificationSchema) },
    ...problemResponses(400, 401),
  },
});

export function registerAdminAudit(app: OpenAPIHono<AppEnv>): void {
  app.openapi(list, async (c) => {
    const q = c.req.valid("query");
    const page = keyset(`audit-${q.log}`, { createdAt: LIST_TIME, id: LIST_ID }, q, "desc");
    return c.json(await listEntries(c.var.db, q.log, filtersOf(q), page), 200);
  });

  app.openapi(exported, async (c) => {
    const q = c.req.valid("query");
    const stream = exportEntries(c.env, null, q.log, filtersOf(q), q.format);
    return exportAnswer(stream, q.format, `audit-${q.log}-${q.tenant ?? "all"}`) as never;
  });

  app.openapi(verify, async (c) => {
    const q = c.req.valid("query");
    try {
      return c.json(await verifyRange(c.var.db, q.log, filtersOf(q)), 200);
    } catch (error) {
      if (error instanceof VerifyRangeTooLarge)
        throw new GatewayError(
          "validation_failed",
          `The range holds ${error.entries} entries; one verification checks at most ${VERIFY_MAX_ENTRIES}. Narrow it with tenant, from and to.`,
        );
      throw error;
    }
  });
}

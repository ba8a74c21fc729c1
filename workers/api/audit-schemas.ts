/**
 * Wire schemas and request parsing shared by the admin (`/admin/v1/audit…`) and tenant
 * (`/gateway/v1/audit…`) audit trail endpoints: entry shapes, query parameters, the streamed export's
 * response.
 */
import { z } from "@hono/zod-openapi";
import type { AuditFilters } from "../audit/queries";
import { GatewayError } from "../errors";
import { PageQuery, pageOf } from "./pagination";
import { text } from "./schemas";

const isoDate = z.string().openapi({ format: "date-time" });
const hash = z.string().openapi({ description: "hex SHA-256 (workers/audit/chain.ts)" });

const chainFields = {
  chain: z.string().openapi({ description: "The tenant's id, or `_operator` for operator-wide actions." }),
  seq: z.number().int().openapi({ description: "Position in the chain, from 1, without gaps." }),
};
const hashFields = {
  prevHash: hash.openapi({ description: "The previous entry's hash (GENESIS, 64 zeros, for the first)." }),
  hash: hash.openapi({ description: "SHA-256 of `prevHash` and the entry's canonical content." }),
};

export const ActionEntrySchema = z
  .object({
    log: z.literal("action"),
    ...chainFields,
    occurredAt: isoDate,
    actorType: z.string().openapi({ description: "`admin`, `key`, `portal`, `console` or `system`." }),
    actorId: z.string(),
    action: z.string().openapi({ example: "key.create" }),
    targets: z.array(z.object({ type: z.string(), id: z.string() })),
    changes: z.record(z.string(), z.object({ before: z.unknown(), after: z.unknown() })),
    requestId: z.string().nullable(),
    clientIp: z.string().nullable(),
    userAgent: z.string().nullable(),
    ...hashFields,
  })
  .openapi("AuditAction");

export const RequestEntrySchema = z
  .object({
    log: z.literal("request"),
    ...chainFields,
    requestId: z.string(),
    occurredAt: isoDate,
    keyId: z.string(),
    method: z.string(),
    route: z.string(),
    status: z.number().int(),
    clientIp: z.string().nullable(),
    userAgent: z.string().nullable(),
    ...hashFields,
  })
  .openapi("AuditRequest");

export const AuditPageSchema = pageOf(z.union([ActionEntrySchema, RequestEntrySchema]));

const logParam = z
  .enum(["action", "request"])
  .default("action")
  .openapi({ description: "`action`: changes (default); `request`: authenticated requests." });
const time = (what: string) =>
  z.iso
    .datetime({ offset: true })
    .optional()
    .openapi({ description: `${what} (ISO 8601).` });
const rangeFields = { from: time("Entries at or after"), to: time("Entries before") };
const tenantParam = text()
  .min(1)
  .max(64)
  .optional()
  .openapi({ description: "A tenant id, or `_operator` for operator-wide actions." });

const listFields = {
  log: logParam,
  actor: text().min(1).max(200).optional().openapi({
    description: "Actor id (action log: key id, session id, `admin_token`…; request log: key id).",
  }),
  action: text()
    .min(1)
    .max(100)
    .optional()
    .openapi({ description: "Dotted verb, e.g. `key.create` (action log)." }),
  ...rangeFields,
};

/** `GET /gateway/v1/audit`: filters and a page. */
export const TenantListQuery = PageQuery.extend(listFields);
/** `GET /admin/v1/audit`: the same, and which chain. */
export const AdminListQuery = TenantListQuery.extend({ tenant: tenantParam });

const exportFields = {
  format: z
    .enum(["csv", "ndjson"])
    .default("ndjson")
    .openapi({ description: "NDJSON verifies with `gw audit verify --file`." }),
  log: logParam,
  ...rangeFields,
};
export const TenantExportQuery = z.object(exportFields);
export const AdminExportQuery = TenantExportQuery.extend({ tenant: tenantParam });
export const VerifyQuery = z.object({ log: logParam, tenant: tenantParam, ...rangeFields });

export const VerificationSchema = z
  .object({
    ok: z.boolean(),
    log: z.enum(["action", "request"]),
    entries: z.number().int().openapi({ description: "Entries recomputed." }),
    chains: z.number().int().openapi({ description: "Chains in the range." }),
    brokenAt: z
      .object({ chain: z.string(), seq: z.number().int() })
      .optional()
      .openapi({ description: "The first entry that does not hold (after a gap: the entry after it)." }),
    reason: z.string().optional(),
  })
  .openapi("AuditVerification");

/** The filters of a request's query: `to` after `from`, and `action` only on the action log (else 400). */
export function filtersOf(q: {
  log: "action" | "request";
  tenant?: string | undefined;
  actor?: string | undefined;
  action?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}): AuditFilters {
  const from = q.from === undefined ? undefined : new Date(q.from);
  const to = q.to === undefined ? undefined : new Date(q.to);
  if (from && to && !(to > from))
    throw new GatewayError("validation_failed", "`to` must be after `from`.", {
      errors: [{ path: "to", message: "must be after from" }],
    });
  if (q.action !== undefined && q.log !== "action")
    throw new GatewayError("validation_failed", "`action` filters the action log only.", {
      errors: [{ path: "action", message: "only with log=action" }],
    });
  return { chain: q.tenant, actor: q.actor, action: q.action, from, to };
}

/** The export's 200 in the OpenAPI document. */
export const exportResponse = {
  description:
    "Entries streamed chain by chain in seq order (CSV with a header row, or NDJSON with every hashed field, seq, prevHash and hash). A time range takes, per chain, the unbroken run of seqs from the first entry at or after `from` to the last before `to`.",
  content: { "application/x-ndjson": { schema: z.string() }, "text/csv": { schema: z.string() } },
};

/** The streamed export as a download. */
export function exportAnswer(
  stream: ReadableStream<Uint8Array>,
  format: "csv" | "ndjson",
  name: string,
): Response {
  return new Response(stream, {
    headers: {
      "content-type": format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson",
      "content-disposition": `attachment; filename="${name}.${format}"`,
    },
  });
}

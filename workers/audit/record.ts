/**
 * Recording the action log: `auditTrail(face)`, mounted after the `database` middleware on each
 * face that changes things (the admin API, the tenant API, the portal, the console), appends one
 * entry per change to the audit trail (workers/audit/append.ts) once the handler has answered.
 *
 * What is recorded: a request with a changing method (POST, PUT, PATCH, DELETE) that succeeded — a
 * status below 400, which takes in a web form's 303 redirect (a refused form is re-rendered with a
 * 4xx on both faces). Not recorded: failures, an idempotent replay (`Idempotent-Replayed: true`: the
 * first request was the action), and a request with no actor (the public sign-up form, which only
 * mails a link; the sign-in that redeems it is recorded).
 *
 * The entry: who (the face's credential — `admin`/`admin_token`, `key`/<key id>, `portal` or
 * `console`/<web session id> — or the actor a sign-in names), what (`c.var.audit`, set by the
 * handler with the before/after of the fields it changed; a handler that set nothing still gets an
 * entry, `<METHOD> <route>` with the path's ids as targets), the request id, client IP
 * (CF-Connecting-IP), user agent and time. Its chain: the detail's tenant, else the caller's tenant,
 * else `_operator`.
 *
 * The append runs after the change committed, in its own transaction: if it fails the change still
 * happened, so the response stands and the failure is logged at error with the request id and the
 * actions (an operator can reconstruct the entry from that line); failing the response would tell
 * the caller a committed change did not happen.
 */
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { log } from "../log";
import { clientIp } from "../shared/client-ip";
import { appendToChains } from "./append";
import { type ActionContent, OPERATOR_CHAIN } from "./chain";
import { jsonValue } from "./changes";
import type { AuditDetail } from "./detail";

/** The faces whose changes are recorded; each names its actor its own way. */
export type AuditFace = "admin" | "tenant" | "portal" | "console";

const CHANGING = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Longest user agent kept (the rest is cut). */
export const USER_AGENT_MAX = 512;

type Actor = { type: string; id: string };

/** The request's own credential on `face`, if any. */
function faceActor(c: Context<AppEnv>, face: AuditFace): Actor | null {
  if (face === "admin") return { type: "admin", id: "admin_token" };
  if (face === "tenant") {
    const key = c.var.auth?.key;
    return key ? { type: "key", id: key.keyId } : null;
  }
  const session = c.var.web?.session;
  return session ? { type: session.kind, id: session.id } : null;
}

/** The tenant the caller acts as: the key's, or the portal session's. */
function faceTenant(c: Context<AppEnv>, face: AuditFace): string | null {
  if (face === "tenant") return c.var.auth?.tenant.id ?? null;
  if (face === "portal") return c.var.web?.session.tenantId ?? null;
  return null;
}

/** `tenants` → `tenant`, `dead-letters` → `dead_letter`: the type of the id after a path segment. */
const singular = (segment: string) => segment.replace(/-/g, "_").replace(/s$/, "");

/**
 * What a handler that set no detail did, from its route: `POST /admin/v1/tenants/:id/keys`, each
 * path parameter a target typed by the segment before it, the tenant's chain when one is named.
 */
export function routeDetail(method: string, routePath: string, params: Record<string, string>): AuditDetail {
  const segments = routePath.split("/");
  const targets: AuditDetail["targets"] = [];
  segments.forEach((segment, i) => {
    if (!segment.startsWith(":")) return;
    const name = segment.slice(1).replace(/\{.*$/, "").replace(/\?$/, "");
    const id = params[name];
    if (id !== undefined) targets.push({ type: singular(segments[i - 1] ?? "resource"), id });
  });
  return {
    action: `${method} ${routePath}`,
    tenantId: targets.find((t) => t.type === "tenant")?.id ?? null,
    targets,
  };
}

/** The entries a succeeded change makes (none without an actor). */
export function actionEntries(c: Context<AppEnv>, face: AuditFace, now: Date): ActionContent[] {
  const set = c.var.audit;
  const details = set === undefined ? [] : Array.isArray(set) ? set : [set];
  if (details.length === 0) details.push(routeDetail(c.req.method, c.req.routePath, c.req.param()));
  const own = faceActor(c, face);
  const entries: ActionContent[] = [];
  for (const detail of details) {
    const actor = detail.actor ?? own;
    if (!actor) continue;
    entries.push({
      chain: detail.tenantId ?? faceTenant(c, face) ?? OPERATOR_CHAIN,
      occurredAt: now.toISOString(),
      actorType: actor.type,
      actorId: actor.id,
      action: detail.action,
      // Stored as JSON and hashed as JSON: a Date must already be its ISO string, or the stored
      // entry and the hashed one differ.
      targets: jsonValue(detail.targets),
      changes: jsonValue(detail.changes ?? {}),
      requestId: c.var.requestId ?? null,
      clientIp: clientIp(c),
      userAgent: c.req.header("user-agent")?.slice(0, USER_AGENT_MAX) ?? null,
    });
  }
  return entries;
}

/** The middleware: records the request's changes after it answered (see the module header). */
export const auditTrail = (face: AuditFace) =>
  createMiddleware<AppEnv>(async function auditTrail(c, next) {
    await next();
    if (!CHANGING.has(c.req.method) || c.res.status >= 400) return;
    if (c.res.headers.get("idempotent-replayed") === "true") return;
    const entries = actionEntries(c, face, new Date());
    if (entries.length === 0) return;
    try {
      await c.var.db.transaction(async (tx) => await appendToChains(tx, "action", entries));
    } catch (error) {
      log.error("audit entry not recorded", {
        request_id: c.var.requestId,
        actions: entries.map((e) => `${e.chain} ${e.action} by ${e.actorType} ${e.actorId}`),
        error: String(error),
      });
    }
  });

/**
 * The request audit log's producer side for authenticated requests that produce no usage event:
 * mounted right after `authenticate` (proxy chain and tenant API), it lets the request run and then,
 * unless the proxy metered it (its usage event is its audit entry), queues an audit record through
 * the usage producer's batches: a refusal after authentication (403, 402, 409, 422, 429 …), an
 * Idempotency-Key replay, a tenant API call. No usage row is ever made of it.
 *
 * Hot path cost: a clock read and two context reads for a metered request (the time is formatted
 * only for a request that needs its own record); a refused one adds an item to
 * the isolate's next usage message (no message of its own, no I/O before the response).
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { sendRequestAudit } from "../metering/producer";
import { MAX_AUDIT_ROUTE } from "../metering/usage-event";
import { clientIp } from "../shared/client-ip";

export const requestAudit = () =>
  createMiddleware<AppEnv>(async function requestAudit(c, next) {
    // A request that passes two audited doors (a tenant API path the proxy then answers) is logged once.
    if (c.get("requestLog")) return await next();
    c.set("requestLog", "pending");
    const arrivedAt = Date.now();
    await next();
    if (c.get("requestLog") === "metered") return;
    const { key } = c.get("auth");
    c.executionCtx.waitUntil(
      sendRequestAudit(c.env, {
        id: c.get("requestId"),
        tenantId: key.tenantId,
        keyId: key.keyId,
        method: c.req.method,
        route: c.get("route")?.prefix ?? new URL(c.req.url).pathname.slice(0, MAX_AUDIT_ROUTE),
        status: c.res.status,
        ts: new Date(arrivedAt).toISOString(),
        clientIp: clientIp(c) ?? undefined,
        userAgent: c.req.header("user-agent"),
      }),
    );
  });

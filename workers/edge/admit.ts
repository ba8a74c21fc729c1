/**
 * Admission: the one call to the tenant's Durable Object per request (on a leased plan, most live
 * requests are admitted from this isolate's lease instead: lease-pool.ts), which decides revocation,
 * tenant status, idempotency, token buckets, quotas and prepaid credits atomically. Stamps the rate-limit headers
 * on every response it lets through (and on its 429s), and answers idempotent replays itself
 * without calling the origin.
 */
import { createMiddleware } from "hono/factory";
import type { PastDue, Refusal } from "../../durable-objects/admission";
import { creditsExhaustedDetail } from "../../durable-objects/credits";
import { fingerprint } from "../../durable-objects/idempotency";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { clientIp } from "../shared/client-ip";
import { idempotencyRefusal, requireIdempotencyKey } from "../shared/idempotency-key";
import { admit as admitRequest, tenantConfig } from "../shared/tenant-client";
import { reject } from "./authenticate";
import { ipRefused, pastDueWarning, paymentRequired, suspended } from "./authorize";
import { admitFromLease, leaseable } from "./lease-pool";
import { maxBodyBytes, originTimeoutMs } from "./origin";
import { rateLimitHeaders } from "./rate-limit-headers";
import { readUpTo } from "./read-body";
import { overloaded } from "./shed";

const IDEMPOTENT_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** An in-flight idempotency lease outlives the origin timeout, so only a dead request loses it. */
const LEASE_MARGIN_MS = 60_000;

/**
 * The error for a refusal by the tenant object. Shared by every door (the proxy's admit and the
 * tenant API's), so a key or tenant is refused the same way everywhere.
 */
export function refusal(outcome: Refusal, ip: string | null, pastDue?: PastDue): GatewayError {
  switch (outcome) {
    case "revoked":
      return reject("The API key has been revoked.");
    case "expired":
      return reject("The API key has expired.");
    case "ip_not_allowed":
      return ipRefused(ip);
    case "suspended":
      return suspended();
    case "past_due":
      return paymentRequired(pastDue);
    case "idempotency_in_flight":
      return idempotencyRefusal("in_flight");
    case "idempotency_mismatch":
      return idempotencyRefusal("mismatch");
  }
}

export const admit = () =>
  createMiddleware<AppEnv>(async function admit(c, next) {
    const { key, tenant } = c.get("auth");
    const route = c.get("route");

    // A declared oversize body is refused before admission: it costs no tokens and is not metered.
    const limit = maxBodyBytes(c.env);
    const declared = c.req.header("content-length");
    if (declared !== undefined && !/^\d+$/.test(declared)) {
      throw new GatewayError("bad_request", "Content-Length must be a single non-negative integer.");
    }
    if (declared !== undefined && Number(declared) > limit) {
      throw new GatewayError("payload_too_large", `Request bodies are limited to ${limit} bytes.`);
    }

    let idempotency: { key: string; fingerprint: string; leaseMs: number } | null = null;
    const header = c.req.header("idempotency-key");
    if (header !== undefined && IDEMPOTENT_METHODS.has(c.req.method)) {
      const idempotencyKey = requireIdempotencyKey(header);
      // The fingerprint covers the body, so an idempotent request's body is read before admission.
      const body = await readUpTo(c.req.raw.body, limit);
      if (!body) throw new GatewayError("payload_too_large", `Request bodies are limited to ${limit} bytes.`);
      c.set("requestBody", body);
      const url = new URL(c.req.url);
      idempotency = {
        key: idempotencyKey,
        fingerprint: await fingerprint(c.req.method, url.pathname + url.search, body),
        leaseMs: originTimeoutMs(c.env, route) + LEASE_MARGIN_MS,
      };
    }

    const slot = c.get("slot");
    const input = {
      keyId: key.keyId,
      keyLimit: key.rateLimit,
      env: key.env,
      ipAllowlist: key.ipAllowlist,
      clientIp: clientIp(c),
      cost: route.cost,
      config: tenantConfig(tenant),
      idempotency,
      // A billable route holds a prepaid tenant's credits until the origin has answered (or lost the lease).
      ...(route.billable ? { creditHoldMs: originTimeoutMs(c.env, route) + LEASE_MARGIN_MS } : {}),
      // Only while the route's origin is degraded (workers/edge/shed.ts): an in-flight slot within the tenant's share.
      ...(slot ? { slot } : {}),
    };
    // A leased plan's live traffic is admitted from this isolate's lease when it can be (lease-pool.ts);
    // not a request that needs an in-flight slot (its route is degraded): only the object holds those.
    const leased =
      !slot && leaseable(tenant, key.env, route.billable, idempotency !== null)
        ? await admitFromLease(c.env, c.executionCtx, tenant.id, input, c.get("config").leaseMs)
        : null;
    const result = leased ?? (await admitRequest(c.env, tenant.id, input));
    const labels = { slug: tenant.slug, planName: tenant.plan.name };

    switch (result.outcome) {
      case "revoked":
      case "expired":
      case "ip_not_allowed":
      case "suspended":
      case "past_due":
      case "idempotency_in_flight":
      case "idempotency_mismatch":
        throw refusal(result.outcome, clientIp(c), result.pastDue);
      case "rate_limited":
      case "quota_exceeded":
        throw new GatewayError(
          result.outcome,
          result.outcome === "rate_limited"
            ? `Too many requests. Retry in ${result.retryAfter} s.`
            : `The ${tenant.plan.name} plan's quota is used up. It resets in ${result.retryAfter} s.`,
          {
            headers: { ...rateLimitHeaders(result.limits, labels), "retry-after": String(result.retryAfter) },
          },
        );
      case "overloaded":
        throw overloaded(route.prefix, result.held);
      case "credits_exhausted":
        throw new GatewayError("credits_exhausted", creditsExhaustedDetail(result.balance, result.cost), {
          headers: rateLimitHeaders(result.limits, labels),
        });
      case "replay": {
        const headers = new Headers(result.response.headers);
        for (const [name, value] of Object.entries(rateLimitHeaders(result.limits, labels)))
          headers.set(name, value);
        headers.set("idempotent-replayed", "true");
        return new Response(result.response.body, { status: result.response.status, headers });
      }
      case "admitted": {
        c.set("admission", {
          leaseToken: result.leaseToken,
          idempotencyKey: idempotency?.key ?? null,
          admittedAt: result.admittedAt,
          creditHoldId: result.creditHold?.id ?? null,
          slotId: result.slotId ?? null,
        });
        await next();
        for (const [name, value] of Object.entries(rateLimitHeaders(result.limits, labels)))
          c.res.headers.set(name, value);
        if (result.pastDue?.graceUntil)
          c.res.headers.set("warning", pastDueWarning(result.pastDue.graceUntil));
      }
    }
  });

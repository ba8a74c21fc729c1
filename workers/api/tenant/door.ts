/**
 * The tenant API's door: every `/gateway/v1/*` request passes the same checks as the proxy, with
 * one tenant Durable Object call. In order:
 * - the cached records, as the proxy's `authorize` reads them (tenant status, the key's IP
 *   allowlist): refused without a Durable Object call;
 * - the tenant object's verdict (`door: "manage"`): the key revoked or past its rotation grace or
 *   expiry → 401, outside the allowlist the object holds → 403, tenant suspended → 403, past due →
 *   402 for anything but reads and revocations — whatever KV and the isolate cache still say;
 * - the management bucket (per tenant, not billed, not charged to any API quota, no usage event),
 *   so usage export and timeseries cannot be used to hammer Postgres → 429 with `Retry-After`.
 *
 * A past-due tenant may still read its usage, timeseries, export and keys, and revoke keys (to shut
 * a leaked one down); creating keys (and anything that costs money) answers 402.
 */
import { createMiddleware } from "hono/factory";
import type { LimitState } from "../../../durable-objects/limits";
import { refusal } from "../../edge/admit";
import { checkIpAllowlist, checkTenantStatus, pastDueWarning } from "../../edge/authorize";
import type { AppEnv } from "../../env";
import { GatewayError } from "../../errors";
import type { KeyRecord } from "../../shared/auth-context";
import { clientIp } from "../../shared/client-ip";
import { admit, tenantConfig } from "../../shared/tenant-client";

/** Methods a past-due tenant may still use: reads, and revoking a key. */
const ALLOWED_WHILE_PAST_DUE = new Set(["GET", "HEAD", "OPTIONS", "DELETE"]);

/** Management-bucket cost per path: the Postgres scans cost more than a key list. */
const COSTS: Record<string, number> = {
  "/gateway/v1/usage/export": 30,
  "/gateway/v1/audit/export": 30,
  "/gateway/v1/usage/timeseries": 10,
};

/** The usage API is answered from the door's own call: no second Durable Object call. */
const USAGE_PATH = "/gateway/v1/usage";

/** RateLimit / RateLimit-Policy (IETF draft) for the management bucket. */
function managementHeaders(limits: LimitState): Record<string, string> {
  const b = limits.burst;
  return {
    "ratelimit-policy": `"manage";q=${b.limit};w=${b.windowSeconds}`,
    ratelimit: `"manage";r=${b.remaining};t=${b.resetSeconds}`,
  };
}

const ROLE_RANK = { member: 0, admin: 1 } as const;

/**
 * Sandbox stays sandbox: a test (`gw_test_`) key creates and revokes only test keys, and no key
 * creates or revokes a key of a higher role than its own. Called by the tenant key endpoints.
 */
export function checkKeyGrant(
  caller: Pick<KeyRecord, "env" | "role">,
  target: Pick<KeyRecord, "env" | "role">,
  action: "create" | "revoke",
): void {
  if (caller.env === "test" && target.env !== "test") {
    throw new GatewayError("forbidden", `A test key can ${action} only test keys.`);
  }
  if (ROLE_RANK[target.role] > ROLE_RANK[caller.role]) {
    throw new GatewayError(
      "forbidden",
      `A ${caller.role} key cannot ${action} a key of the ${target.role} role.`,
    );
  }
}

export const tenantDoor = () =>
  createMiddleware<AppEnv>(async function tenantDoor(c, next) {
    const { key, tenant } = c.var.auth;
    const ip = clientIp(c);
    const readOnly = ALLOWED_WHILE_PAST_DUE.has(c.req.method);
    checkTenantStatus(c.var.auth, { readOnly });
    checkIpAllowlist(c.var.auth, ip);

    const path = new URL(c.req.url).pathname;
    const result = await admit(c.env, tenant.id, {
      keyId: key.keyId,
      keyLimit: key.rateLimit,
      env: key.env,
      ipAllowlist: key.ipAllowlist,
      clientIp: ip,
      cost: COSTS[path] ?? 1,
      config: tenantConfig(tenant),
      idempotency: null,
      door: "manage",
      write: !readOnly,
      peek: c.req.method === "GET" && path === USAGE_PATH,
    });
    switch (result.outcome) {
      case "admitted": {
        if (result.usage) c.set("tenantUsage", result.usage);
        await next();
        for (const [name, value] of Object.entries(managementHeaders(result.limits)))
          c.res.headers.set(name, value);
        if (result.pastDue?.graceUntil)
          c.res.headers.set("warning", pastDueWarning(result.pastDue.graceUntil));
        return;
      }
      case "rate_limited":
      case "quota_exceeded":
        throw new GatewayError(
          "rate_limited",
          `Too many tenant API requests. Retry in ${result.retryAfter} s.`,
          {
            headers: { ...managementHeaders(result.limits), "retry-after": String(result.retryAfter) },
          },
        );
      case "replay":
      case "credits_exhausted":
      case "overloaded":
        // No Idempotency-Key is taken at this door, it spends no credits, and it never asks for an in-flight slot.
        throw new GatewayError("internal", "An internal error occurred.");
      default:
        throw refusal(result.outcome, ip, result.pastDue);
    }
  });

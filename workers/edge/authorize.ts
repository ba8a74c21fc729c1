/**
 * Authorizes an authenticated request for its route: tenant status, plan entitlement and the
 * key's IP allowlist. All from the records already in hand: no I/O.
 */
import { createMiddleware } from "hono/factory";
import { ipAllowed } from "../../durable-objects/cidr";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";

export const authorize = () =>
  createMiddleware<AppEnv>(async function authorize(c, next) {
    const { key, tenant } = c.var.auth;
    if (tenant.status === "suspended") {
      throw new GatewayError("tenant_suspended", "This account is suspended. Contact the API provider.");
    }
    if (tenant.status === "past_due") {
      throw new GatewayError(
        "payment_required",
        "This account has an unpaid balance. Update billing to continue.",
      );
    }
    const { entitlement } = c.var.route;
    if (entitlement && !tenant.plan.entitlements.includes(entitlement)) {
      throw new GatewayError(
        "plan_upgrade_required",
        `The ${tenant.plan.name} plan does not include '${entitlement}'. Upgrade to call this route.`,
      );
    }
    if (key.ipAllowlist.length > 0) {
      // CF-Connecting-IP is set by Cloudflare's edge and cannot be forged by the client there.
      const ip = c.req.header("cf-connecting-ip") ?? "";
      if (!ipAllowed(ip, key.ipAllowlist)) {
        throw new GatewayError(
          "ip_not_allowed",
          `Requests from ${ip || "this address"} are not allowed for this key.`,
        );
      }
    }
    await next();
  });

/**
 * Authorizes an authenticated request for its route: tenant status, plan entitlement and the
 * key's IP allowlist. All from the records already in hand: no I/O. The checks are exported one by
 * one so every tenant door (the proxy and the tenant API) refuses the same way; the tenant object
 * repeats the key and status checks with its fresher view at admission.
 */
import { createMiddleware } from "hono/factory";
import { ipAllowed } from "../../durable-objects/cidr";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import type { AuthContext } from "../shared/auth-context";

export const suspended = () =>
  new GatewayError("tenant_suspended", "This account is suspended. Contact the API provider.");

export const paymentRequired = () =>
  new GatewayError("payment_required", "This account has an unpaid balance. Update billing to continue.");

export const ipRefused = (ip: string | null) =>
  new GatewayError("ip_not_allowed", `Requests from ${ip || "this address"} are not allowed for this key.`);

/** The client's address. CF-Connecting-IP is set by Cloudflare's edge and cannot be forged by the client there. */
export const clientIp = (c: { req: { header(name: string): string | undefined } }): string | null =>
  c.req.header("cf-connecting-ip") ?? null;

/** Tenant status as the cached record says. `readOnly`: a past-due tenant may still read (the tenant API's GETs). */
export function checkTenantStatus(auth: AuthContext, options: { readOnly: boolean }): void {
  if (auth.tenant.status === "suspended") throw suspended();
  if (auth.tenant.status === "past_due" && !options.readOnly) throw paymentRequired();
}

/** The key's IP allowlist as the cached record says (the tenant object checks its own, fresher copy). */
export function checkIpAllowlist(auth: AuthContext, ip: string | null): void {
  const { ipAllowlist } = auth.key;
  if (ipAllowlist.length > 0 && !ipAllowed(ip ?? "", ipAllowlist)) throw ipRefused(ip);
}

export const authorize = () =>
  createMiddleware<AppEnv>(async function authorize(c, next) {
    const { tenant } = c.var.auth;
    checkTenantStatus(c.var.auth, { readOnly: false });
    const { entitlement } = c.var.route;
    if (entitlement && !tenant.plan.entitlements.includes(entitlement)) {
      throw new GatewayError(
        "plan_upgrade_required",
        `The ${tenant.plan.name} plan does not include '${entitlement}'. Upgrade to call this route.`,
      );
    }
    checkIpAllowlist(c.var.auth, clientIp(c));
    await next();
  });

/**
 * Authorizes an authenticated request for its route: tenant status, plan entitlement and the
 * key's IP allowlist. All from the records already in hand: no I/O. The checks are exported one by
 * one so every tenant door (the proxy and the tenant API) refuses the same way; the tenant object
 * repeats the key and status checks with its fresher view at admission.
 */
import { createMiddleware } from "hono/factory";
import { type PastDue, withinGrace } from "../../durable-objects/admission";
import { ipAllowed } from "../../durable-objects/cidr";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import type { AuthContext } from "../shared/auth-context";
import { clientIp } from "../shared/client-ip";

export const suspended = () =>
  new GatewayError("tenant_suspended", "This account is suspended. Contact the API provider.");

/** 402. With dunning dates (a failed payment, grace over), the detail says since when and why. */
export function paymentRequired(pastDue?: PastDue | null): GatewayError {
  if (!pastDue?.since) {
    return new GatewayError(
      "payment_required",
      "This account has an unpaid balance. Update billing to continue.",
    );
  }
  const refusedFrom = new Date(pastDue.graceUntil ?? pastDue.since).toISOString();
  return new GatewayError(
    "payment_required",
    `A payment for this account failed on ${new Date(pastDue.since).toISOString()} and is still unpaid; requests are refused since ${refusedFrom}, the end of the grace period. Pay the open invoice to continue.`,
  );
}

/**
 * The header a past-due tenant's requests carry during the grace period (RFC 9111's Warning
 * syntax, code 299 "miscellaneous persistent warning"): when requests start being refused, as an
 * IMF-fixdate like `Retry-After` and `Sunset`.
 */
export const pastDueWarning = (graceUntil: number) =>
  `299 gateway "Payment past due; requests will be refused from ${new Date(graceUntil).toUTCString()}"`;

export const ipRefused = (ip: string | null) =>
  new GatewayError("ip_not_allowed", `Requests from ${ip || "this address"} are not allowed for this key.`);

/**
 * Tenant status as the cached record says. `readOnly`: a past-due tenant may still read (the tenant
 * API's GETs). A past-due tenant within its grace period passes: the tenant object decides (and
 * flags the response), as it does once the grace ends, by the same rule.
 */
export function checkTenantStatus(auth: AuthContext, options: { readOnly: boolean }): void {
  const { tenant } = auth;
  if (options.readOnly && tenant.status === "past_due") return;
  const refusal = statusRefusal(tenant, Date.now());
  if (refusal) throw refusal;
}

/**
 * The one status rule for a change (the proxy, the tenant API and the portal alike): suspended → 403;
 * past due after its grace → 402; past due within its grace, or active → null (go ahead).
 */
export function statusRefusal(
  tenant: { status: string; pastDueSince: number | null; graceUntil: number | null },
  now: number,
): GatewayError | null {
  if (tenant.status === "suspended") return suspended();
  if (tenant.status !== "past_due" || withinGrace(tenant.graceUntil, now)) return null;
  return paymentRequired({ since: tenant.pastDueSince, graceUntil: tenant.graceUntil });
}

/** The key's IP allowlist as the cached record says (the tenant object checks its own, fresher copy). */
export function checkIpAllowlist(auth: AuthContext, ip: string | null): void {
  const { ipAllowlist } = auth.key;
  if (ipAllowlist.length > 0 && !ipAllowed(ip ?? "", ipAllowlist)) throw ipRefused(ip);
}

export const authorize = () =>
  createMiddleware<AppEnv>(async function authorize(c, next) {
    const { tenant } = c.get("auth");
    checkTenantStatus(c.get("auth"), { readOnly: false });
    const { entitlement } = c.get("route");
    if (entitlement && !tenant.plan.entitlements.includes(entitlement)) {
      throw new GatewayError(
        "plan_upgrade_required",
        `The ${tenant.plan.name} plan does not include '${entitlement}'. Upgrade to call this route.`,
      );
    }
    checkIpAllowlist(c.get("auth"), clientIp(c));
    await next();
  });

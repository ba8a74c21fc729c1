/**
 * The audit details (workers/audit/detail.ts) of the changes several faces make alike — a tenant
 * made or changed, a key made, changed, revoked or rotated, credits adjusted, a portal link minted, a
 * web session started or ended — so the admin API, the tenant API, the portal and the console record
 * the same change the same way. Keys appear by id and prefix, never by plaintext or hash.
 */
import type { ApiKey, Plan, Tenant, WebSession } from "../../schema";
import type { CreatedTenant } from "../api/tenant-create";
import { AUDITED_FIELDS, added, created, diff } from "./changes";
import type { AuditDetail } from "./detail";

const tenantTarget = (id: string) => ({ type: "tenant", id });
const keyTarget = (id: string) => ({ type: "key", id });

/** A made plan (operator-wide: the operator's chain). */
export const planCreated = (plan: Plan): AuditDetail => ({
  action: "plan.create",
  tenantId: null,
  targets: [{ type: "plan", id: plan.id }],
  changes: created(plan, AUDITED_FIELDS.plan),
});

/** A changed plan, from the row before and after. */
export const planUpdated = (before: Plan, after: Plan): AuditDetail => ({
  action: "plan.update",
  tenantId: null,
  targets: [{ type: "plan", id: after.id }],
  changes: diff(before, after, AUDITED_FIELDS.plan),
});

/** A made tenant: its fields, and its first key's id and prefix. */
export const tenantCreated = (made: CreatedTenant): AuditDetail => ({
  action: "tenant.create",
  tenantId: made.tenant.id,
  targets: [tenantTarget(made.tenant.id), keyTarget(made.key.row.id)],
  changes: {
    ...created(made.tenant, AUDITED_FIELDS.tenant),
    ...added("firstKey", keyRef(made.key.row)),
  },
});

/** A changed tenant (plan, limits, status, name…), from the row before and after. */
export const tenantUpdated = (before: Tenant | undefined, after: Tenant): AuditDetail => ({
  action: "tenant.update",
  tenantId: after.id,
  targets: [tenantTarget(after.id)],
  changes: diff(before, after, AUDITED_FIELDS.tenant),
});

/** What names a key in an entry: never its plaintext or hash. */
const keyRef = (key: ApiKey) => ({ id: key.id, prefix: key.prefix, env: key.env, role: key.role });

/** A made key. */
export const keyCreated = (key: ApiKey): AuditDetail => ({
  action: "key.create",
  tenantId: key.tenantId,
  targets: [keyTarget(key.id)],
  changes: created(key, AUDITED_FIELDS.key),
});

/** A changed key (name, allowlist, limit, expiry), from the row before and after. */
export const keyUpdated = (before: ApiKey | undefined, after: ApiKey): AuditDetail => ({
  action: "key.update",
  tenantId: after.tenantId,
  targets: [keyTarget(after.id)],
  changes: diff(before, after, AUDITED_FIELDS.key),
});

/** A revoked key (an already revoked one changes nothing: no changes). */
export const keyRevoked = (before: ApiKey | undefined, after: ApiKey): AuditDetail => ({
  action: "key.revoke",
  tenantId: after.tenantId,
  targets: [keyTarget(after.id)],
  changes: diff(before, after, ["revokedAt"]),
});

/** A rotated key: the old one's expiry moved to the grace end, and its successor. */
export const keyRotated = (before: ApiKey | undefined, previous: ApiKey, successor: ApiKey): AuditDetail => ({
  action: "key.rotate",
  tenantId: previous.tenantId,
  targets: [keyTarget(previous.id), keyTarget(successor.id)],
  changes: { ...diff(before, previous, ["expiresAt"]), ...added("successor", keyRef(successor)) },
});

/** A credit adjustment (grant or debit) and the balance it moved. */
export const creditsAdjusted = (
  tenantId: string,
  entry: { id: string; units: number; reason: string | null; actor: string | null },
  balance: number,
): AuditDetail => ({
  action: "credits.adjust",
  tenantId,
  targets: [tenantTarget(tenantId), { type: "credit_entry", id: entry.id }],
  changes: {
    balance: { before: balance - entry.units, after: balance },
    ...added("adjustment", { units: entry.units, reason: entry.reason, actor: entry.actor }),
  },
});

/** A Stripe Checkout Session for credit packs (the credits arrive when it is paid). */
export const creditsCheckout = (
  tenantId: string,
  session: { id: string; units: number; amount: number; currency: string },
): AuditDetail => ({
  action: "credits.checkout",
  tenantId,
  targets: [tenantTarget(tenantId), { type: "checkout_session", id: session.id }],
  changes: added("checkout", {
    units: session.units,
    amount: session.amount,
    currency: session.currency,
  }),
});

/** A one-time portal link minted for a tenant (never the code itself). */
export const portalLinkCreated = (tenantId: string, expiresAt: Date): AuditDetail => ({
  action: "portal_link.create",
  tenantId,
  targets: [tenantTarget(tenantId)],
  changes: added("link", { expiresAt }),
});

/** A billing sync of the tenant asked for again, and the billing state it left. */
export const billingSyncRetried = (before: Tenant | undefined, after: Tenant): AuditDetail => ({
  action: "billing.retry_sync",
  tenantId: after.id,
  targets: [tenantTarget(after.id)],
  changes: diff(before, after, [
    "billingSync",
    "billingPlanId",
    "billingPricingVersion",
    "stripeSubscriptionId",
  ]),
});

/** A web session started (a sign-in); the session is its own actor. */
export const sessionCreated = (session: WebSession): AuditDetail => ({
  action: "session.create",
  tenantId: session.tenantId,
  targets: [{ type: "web_session", id: session.id }],
  changes: added("session", { kind: session.kind, via: session.via, email: session.email }),
  actor: { type: session.kind, id: session.id },
});

/** A web session ended (a sign-out). */
export const sessionRevoked = (session: WebSession): AuditDetail => ({
  action: "session.revoke",
  tenantId: session.tenantId,
  targets: [{ type: "web_session", id: session.id }],
  changes: { revokedAt: { before: null, after: new Date().toISOString() } },
});

/**
 * Projects Postgres rows (the source of truth) to the edge: KV records for key lookups, and the
 * tenant's Durable Object for what must hold on the very next request everywhere (limits, status,
 * revocations, rotation expiry). The admin API calls these after each transaction commits.
 */
import type { ApiKey, Plan, Tenant } from "../../schema";
import type { Bindings } from "../env";
import { type KeyRecord, keyKvName, type TenantRecord, tenantKvName } from "../shared/auth-context";
import { forgetKey, forgetTenant } from "../shared/key-store";
import { configure, putKey, tenantConfig } from "../shared/tenant-client";

type EdgeEnv = Pick<Bindings, "API_KEYS" | "TENANT">;

/** KV's minimum expiration is 60 s ahead; dead keys are kept a day past their end so the edge says "revoked"/"expired", not "unknown". */
const DEAD_KEY_RETENTION_S = 86_400;

/** A prepaid plan's tenants spend credits (durable-objects/credits.ts). */
function prepaid(plan: Plan): { credits?: true } {
  return plan.pricing.model === "prepaid" ? { credits: true } : {};
}

export function tenantRecord(tenant: Tenant, plan: Plan): TenantRecord {
  const o = tenant.overrides;
  const limits = {
    burstCapacity: o.burstCapacity ?? plan.burstCapacity,
    refillTokens: o.refillTokens ?? plan.refillTokens,
    refillPeriodSeconds: o.refillPeriodSeconds ?? plan.refillPeriodSeconds,
    dailyQuota: o.dailyQuota !== undefined ? o.dailyQuota : plan.dailyQuota,
    monthlyQuota: o.monthlyQuota !== undefined ? o.monthlyQuota : plan.monthlyQuota,
  };
  return {
    id: tenant.id,
    version: tenant.configVersion,
    slug: tenant.slug,
    status: tenant.status,
    pastDueSince: tenant.pastDueSince?.getTime() ?? null,
    graceUntil: tenant.graceUntil?.getTime() ?? null,
    plan: { id: plan.id, name: plan.name, entitlements: plan.entitlements },
    limits,
    // Test traffic: the plan's sandbox limits; what they leave out takes the live numbers.
    sandbox: { ...limits, ...plan.sandboxLimits },
    ...prepaid(plan),
    ...(plan.admissionMode === "leased" ? { admissionMode: "leased" as const } : {}),
  };
}

export function keyRecord(key: ApiKey): KeyRecord {
  return {
    keyId: key.id,
    tenantId: key.tenantId,
    env: key.env,
    role: key.role,
    ipAllowlist: key.ipAllowlist,
    expiresAt: key.expiresAt?.getTime() ?? null,
    revokedAt: key.revokedAt?.getTime() ?? null,
    rateLimit: key.rateLimit ?? null,
  };
}

export async function projectTenant(env: EdgeEnv, tenant: Tenant, plan: Plan): Promise<void> {
  const record = tenantRecord(tenant, plan);
  await configure(env, tenant.id, tenantConfig(record));
  await env.API_KEYS.put(tenantKvName(tenant.id), JSON.stringify(record));
  forgetTenant(tenant.id);
}

export async function projectKey(env: EdgeEnv, key: ApiKey, now: number = Date.now()): Promise<void> {
  const record = keyRecord(key);
  // The tenant object decides on the key (revoked, expiry, allowlist, per-key limit) on the next
  // request everywhere, whatever KV and isolate caches still say.
  await putKey(env, key.tenantId, key.id, {
    version: now,
    revokedAt: record.revokedAt,
    expiresAt: record.expiresAt,
    ipAllowlist: record.ipAllowlist,
    rateLimit: record.rateLimit,
  });
  const end = record.revokedAt ?? record.expiresAt;
  const options: KVNamespacePutOptions = {};
  if (end !== null) {
    options.expiration = Math.max(
      Math.floor(end / 1000) + DEAD_KEY_RETENTION_S,
      Math.floor(now / 1000) + 120,
    );
  }
  await env.API_KEYS.put(keyKvName(key.hash), JSON.stringify(record), options);
  forgetKey(key.hash);
}

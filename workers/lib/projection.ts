/**
 * Projects Postgres rows (the source of truth) into the KV records the edge reads.
 * The admin API calls these in the same request as every change, after the transaction commits.
 */
import type { ApiKey, Plan, Tenant } from "../../schema";
import { type KeyRecord, keyKvName, type TenantRecord, tenantKvName } from "./auth-context";
import { forgetKey, forgetTenant } from "./key-store";

/** KV's minimum expiration is 60 s ahead; dead keys are kept a day past their end so the edge says "revoked"/"expired", not "unknown". */
const DEAD_KEY_RETENTION_S = 86_400;

export function tenantRecord(tenant: Tenant, plan: Plan): TenantRecord {
  const o = tenant.overrides;
  return {
    id: tenant.id,
    slug: tenant.slug,
    status: tenant.status,
    plan: { id: plan.id, name: plan.name, entitlements: plan.entitlements },
    limits: {
      burstCapacity: o.burstCapacity ?? plan.burstCapacity,
      refillTokens: o.refillTokens ?? plan.refillTokens,
      refillPeriodSeconds: o.refillPeriodSeconds ?? plan.refillPeriodSeconds,
      dailyQuota: o.dailyQuota !== undefined ? o.dailyQuota : plan.dailyQuota,
      monthlyQuota: o.monthlyQuota !== undefined ? o.monthlyQuota : plan.monthlyQuota,
    },
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

export async function projectTenant(kv: KVNamespace, tenant: Tenant, plan: Plan): Promise<void> {
  await kv.put(tenantKvName(tenant.id), JSON.stringify(tenantRecord(tenant, plan)));
  forgetTenant(tenant.id);
}

export async function projectKey(kv: KVNamespace, key: ApiKey, now: number = Date.now()): Promise<void> {
  const record = keyRecord(key);
  const end = record.revokedAt ?? record.expiresAt;
  const options: KVNamespacePutOptions = {};
  if (end !== null) {
    options.expiration = Math.max(
      Math.floor(end / 1000) + DEAD_KEY_RETENTION_S,
      Math.floor(now / 1000) + 120,
    );
  }
  await kv.put(keyKvName(key.hash), JSON.stringify(record), options);
  forgetKey(key.hash);
}

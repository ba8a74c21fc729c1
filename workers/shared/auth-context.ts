/**
 * What the edge knows about a key and its tenant: the records the admin API projects into KV
 * (`apikey:<sha256>`, `tenant:<id>`) and the per-request AuthContext built from them.
 * Everything read back from KV is parsed with these schemas.
 */
import { z } from "zod";

export const RateLimitSchema = z.object({
  burstCapacity: z.number().int().positive(),
  refillTokens: z.number().int().positive(),
  refillPeriodSeconds: z.number().int().positive(),
});

/** A token bucket plus daily/monthly quotas (null = unlimited). */
export const WindowLimitsSchema = RateLimitSchema.extend({
  dailyQuota: z.number().int().nullable(),
  monthlyQuota: z.number().int().nullable(),
});

export const KeyRecordSchema = z.object({
  keyId: z.string(),
  tenantId: z.string(),
  env: z.enum(["live", "test"]),
  role: z.enum(["admin", "member"]),
  ipAllowlist: z.array(z.string()),
  /** Epoch ms; null = never. */
  expiresAt: z.number().nullable(),
  revokedAt: z.number().nullable(),
  rateLimit: RateLimitSchema.nullable(),
});
export type KeyRecord = z.infer<typeof KeyRecordSchema>;

export const TenantRecordSchema = z.object({
  id: z.string(),
  /**
   * The tenant's config version (schema/tenants.ts `configVersion`: bumped on every change of the
   * tenant or its plan); the tenant object keeps the newest config it sees. Defaults to 0 so records projected before the field existed still parse (they lose to any
   * config the admin API has pushed since).
   */
  version: z.number().default(0),
  slug: z.string(),
  status: z.enum(["active", "suspended", "past_due"]),
  /** Dunning (epoch ms): when a past-due tenant became so, and the end of its grace; null otherwise (and in older records). */
  pastDueSince: z.number().nullable().default(null),
  graceUntil: z.number().nullable().default(null),
  plan: z.object({ id: z.string(), name: z.string(), entitlements: z.array(z.string()) }),
  /** The plan's limits with the tenant's overrides applied. */
  limits: WindowLimitsSchema,
  /** The plan's sandbox limits (test keys); absent in records projected before they existed (defaults apply). */
  sandbox: WindowLimitsSchema.optional(),
  /** The plan is prepaid: live traffic spends credits (absent in records from before credits: false). */
  credits: z.boolean().optional(),
  /** The plan's admission mode: `leased` admits live traffic from leases (workers/edge/lease-pool.ts); absent = exact. */
  admissionMode: z.enum(["exact", "leased"]).optional(),
});
export type TenantRecord = z.infer<typeof TenantRecordSchema>;

export interface AuthContext {
  key: KeyRecord;
  tenant: TenantRecord;
}

export const keyKvName = (hash: string) => `apikey:${hash}`;
export const tenantKvName = (tenantId: string) => `tenant:${tenantId}`;

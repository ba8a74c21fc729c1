/**
 * Wire schemas for the admin and tenant APIs (request bodies, responses, problem+json), shared by
 * the validators and the OpenAPI document. Serializers turn rows into these shapes; a key's hash
 * never leaves the database.
 */
import { z } from "@hono/zod-openapi";
import { parseCidr } from "../../durable-objects/cidr";
import type { ApiKey, Plan, Tenant } from "../../schema";
import { PlanPricingInput } from "../billing/pricing";
import { ERROR_CODES } from "../errors";

/** A UTF-16 surrogate without its pair: valid in a JS string, not encodable as UTF-8. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Text from a client. Postgres text holds neither NUL nor lone surrogates: refuse them here (400),
 * not in the driver (500).
 */
export const text = () =>
  z
    .string()
    .refine(
      (v) => !v.includes("\0") && !LONE_SURROGATE.test(v),
      "must be valid Unicode text without NUL characters",
    );

const positiveInt = z.number().int().positive().max(1_000_000_000);
const quota = z.number().int().min(0).max(1_000_000_000_000).nullable();
const isoDate = z.string().openapi({ format: "date-time" });

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.enum(Object.keys(ERROR_CODES) as [keyof typeof ERROR_CODES]),
    request_id: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

export const RateLimitInput = z
  .object({ burstCapacity: positiveInt, refillTokens: positiveInt, refillPeriodSeconds: positiveInt })
  .strict();

/** Every limit a plan sets, each optional: a tenant's overrides, or a plan's sandbox limits. */
const limitFields = {
  burstCapacity: positiveInt,
  refillTokens: positiveInt,
  refillPeriodSeconds: positiveInt,
  dailyQuota: quota,
  monthlyQuota: quota,
};

/** A plan's sandbox (test-key) limits: any subset; the rest take the live limits' numbers. */
export const SandboxLimitsInput = z.object(limitFields).partial().strict().openapi("SandboxLimits");

const planFields = {
  // Shown in the X-RateLimit-Plan header: printable ASCII only.
  name: z
    .string()
    .trim()
    .min(1)
    .max(64)
    .regex(/^[\x20-\x7e]+$/, "printable ASCII only"),
  burstCapacity: positiveInt,
  refillTokens: positiveInt,
  refillPeriodSeconds: positiveInt,
  dailyQuota: quota,
  monthlyQuota: quota,
  entitlements: z.array(text().min(1).max(64)).max(100),
  /** What the plan costs; a change makes a new pricing version (and new Stripe prices). */
  pricing: PlanPricingInput,
  /** Test-key limits, spent in their own bucket and quotas; fields left out take the live limits' numbers. */
  sandboxLimits: SandboxLimitsInput.nullable(),
  /**
   * How live traffic is admitted: `exact` (one tenant-object call per request, every limit exact) or
   * `leased` (isolates admit from short leases: quotas stay exact, the token bucket may overshoot
   * by at most 1 % of its capacity, a revocation or suspension applies within 1 s). README "Lease mode".
   */
  admissionMode: z.enum(["exact", "leased"]),
};

export const PlanInput = z
  .object({
    ...planFields,
    dailyQuota: planFields.dailyQuota.default(null),
    monthlyQuota: planFields.monthlyQuota.default(null),
    entitlements: planFields.entitlements.default([]),
    pricing: planFields.pricing.default({ model: "free" }),
    sandboxLimits: planFields.sandboxLimits.default(null),
    admissionMode: planFields.admissionMode.default("exact"),
  })
  .strict()
  .openapi("PlanInput");

/** Only the fields sent change (no defaults here, or a partial update would reset them). */
export const PlanPatch = z
  .object({
    ...planFields,
    /**
     * When tenants already on the plan move to a changed `pricing`: `now` (their subscriptions change
     * at once, with proration) or `period_end` (each at the end of its current period, no proration).
     */
    applyPricing: z.enum(["now", "period_end"]),
  })
  .partial()
  .strict()
  .openapi("PlanPatch");

export const PlanSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    burstCapacity: z.number().int(),
    refillTokens: z.number().int(),
    refillPeriodSeconds: z.number().int(),
    dailyQuota: z.number().int().nullable(),
    monthlyQuota: z.number().int().nullable(),
    entitlements: z.array(z.string()),
    pricing: PlanPricingInput,
    pricingVersion: z.number().int(),
    sandboxLimits: SandboxLimitsInput.nullable(),
    admissionMode: z.enum(["exact", "leased"]),
    createdAt: isoDate,
    updatedAt: isoDate,
  })
  .openapi("Plan");

export const LimitOverridesInput = z.object(limitFields).partial().strict();

const slug = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$/, "lower-case letters, digits and inner dashes, at most 40");

export const TenantInput = z
  .object({
    slug,
    name: text().trim().min(1).max(200),
    planId: text().min(1).max(64),
    overrides: LimitOverridesInput.default({}),
  })
  .strict()
  .openapi("TenantInput");

/**
 * `overrides` in a tenant PATCH is a JSON Merge Patch (RFC 7396) of the current overrides: fields sent
 * are set, `null` removes a field (back to the plan's value), absent fields stay; `overrides: null`
 * removes them all. (So a PATCH cannot set an override of "unlimited" — null — on a quota; create can.)
 */
export const LimitOverridesPatch = z
  .object({
    burstCapacity: positiveInt.nullable(),
    refillTokens: positiveInt.nullable(),
    refillPeriodSeconds: positiveInt.nullable(),
    dailyQuota: quota,
    monthlyQuota: quota,
  })
  .partial()
  .strict()
  .openapi("LimitOverridesPatch", {
    description: "JSON Merge Patch (RFC 7396) of the tenant's overrides: null removes a field.",
  });

export const TenantPatch = z
  .object({
    name: text().trim().min(1).max(200),
    planId: text().min(1).max(64),
    status: z.enum(["active", "suspended", "past_due"]),
    overrides: LimitOverridesPatch.nullable(),
  })
  .partial()
  .strict()
  .openapi("TenantPatch");

export const TenantSchema = z
  .object({
    id: z.string(),
    slug: z.string(),
    name: z.string(),
    status: z.enum(["active", "suspended", "past_due"]),
    /** Who set the status: the operator (admin API) or billing (Stripe webhooks); billing never lifts the operator's. */
    statusReason: z.enum(["operator", "billing"]),
    /** Dunning: when the tenant's payment first failed (null unless billing made it past due or suspended). */
    pastDueSince: isoDate.nullable(),
    /** Dunning: requests pass (with a Warning header) until then, and are refused with 402 from then. */
    graceUntil: isoDate.nullable(),
    planId: z.string(),
    overrides: LimitOverridesInput,
    stripeCustomerId: z.string().nullable(),
    billing: z
      .object({
        customerId: z.string().nullable(),
        subscriptionId: z.string().nullable(),
        /** The plan and pricing version the subscription bills by now. */
        planId: z.string().nullable(),
        pricingVersion: z.number().int().nullable(),
        periodEnd: isoDate.nullable(),
        /** `pending`: Stripe has not caught up with the latest change yet (retried by the cron). */
        sync: z.enum(["pending", "ok", "failed"]),
        lastError: z.string().nullable(),
      })
      .openapi("TenantBilling"),
    createdAt: isoDate,
    updatedAt: isoDate,
  })
  .openapi("Tenant");

const cidr = z.string().refine((v) => parseCidr(v) !== null, "must be an IPv4 or IPv6 address or CIDR block");

export const KeyInput = z
  .object({
    env: z.enum(["live", "test"]).default("live"),
    name: text().trim().min(1).max(200).nullable().default(null),
    role: z.enum(["admin", "member"]).default("member"),
    ipAllowlist: z.array(cidr).max(100).default([]),
    expiresAt: z.iso
      .datetime({ offset: true })
      .refine((v) => Date.parse(v) > Date.now(), "must be in the future")
      .nullable()
      .default(null),
    rateLimit: RateLimitInput.nullable().default(null),
  })
  .strict()
  .openapi("KeyInput");

/** A key's changeable attributes; only the fields sent change. `expiresAt` must be in the future. */
export const KeyPatch = z
  .object({
    name: text().trim().min(1).max(200).nullable(),
    ipAllowlist: z.array(cidr).max(100),
    rateLimit: RateLimitInput.nullable(),
    expiresAt: z.iso
      .datetime({ offset: true })
      .nullable()
      .refine((v) => v === null || Date.parse(v) > Date.now(), "must be in the future"),
  })
  .partial()
  .strict()
  .openapi("KeyPatch");

export const RotateInput = z
  .object({
    /** How long the old key keeps working; 0 = stops at once. */
    gracePeriodSeconds: z
      .number()
      .int()
      .min(0)
      .max(30 * 86_400)
      .default(86_400),
  })
  .strict()
  .openapi("RotateInput");

export const KeySchema = z
  .object({
    id: z.string(),
    tenantId: z.string(),
    prefix: z.string(),
    last4: z.string(),
    name: z.string().nullable(),
    env: z.enum(["live", "test"]),
    role: z.enum(["admin", "member"]),
    ipAllowlist: z.array(z.string()),
    rateLimit: RateLimitInput.nullable(),
    expiresAt: isoDate.nullable(),
    revokedAt: isoDate.nullable(),
    rotatedFromId: z.string().nullable(),
    createdAt: isoDate,
  })
  .openapi("ApiKey");

/** A key as returned once, at creation: the plaintext is never retrievable again. */
export const CreatedKeySchema = KeySchema.extend({
  key: z.string().openapi({ description: "The plaintext key. Shown once; store it now." }),
}).openapi("CreatedApiKey");

export const IdParam = z.object({ id: text().min(1).max(64) });

/** The `Idempotency-Key` request header of the creating POSTs (workers/api/idempotency.ts). */
export const IdempotencyHeaders = z.object({
  "idempotency-key": z.string().optional().openapi({
    description:
      "Makes a retry safe (IETF Idempotency-Key draft; quoted or bare, 1-255 printable ASCII). The first request's response is recorded for 24 h and replayed, with `Idempotent-Replayed: true`, to a retry with the same key, method, path and body; a retry never creates a second resource. Same key while the first is in flight → 409 `idempotency_key_in_use`; with a different request → 422 `idempotency_key_mismatch`; a 5xx releases the key. Admin calls share one scope; each tenant has its own.",
    example: "8e03978e-40d5-43e8-bc93-6894a57f9324",
  }),
});

/** Response header documentation of a replayed response. */
export const replayedHeaders = {
  "Idempotent-Replayed": {
    description:
      "`true` when this is the recorded response of an earlier request with the same Idempotency-Key.",
    schema: { type: "string" as const, enum: ["true"] },
  },
};

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function planOut(p: Plan): z.infer<typeof PlanSchema> {
  return { ...p, createdAt: p.createdAt.toISOString(), updatedAt: p.updatedAt.toISOString() };
}

export function tenantOut(t: Tenant): z.infer<typeof TenantSchema> {
  return {
    id: t.id,
    slug: t.slug,
    name: t.name,
    status: t.status,
    statusReason: t.statusReason,
    pastDueSince: iso(t.pastDueSince),
    graceUntil: iso(t.graceUntil),
    planId: t.planId,
    overrides: t.overrides,
    stripeCustomerId: t.stripeCustomerId,
    billing: {
      customerId: t.stripeCustomerId,
      subscriptionId: t.stripeSubscriptionId,
      planId: t.billingPlanId,
      pricingVersion: t.billingPricingVersion,
      periodEnd: t.billingPeriodEnd?.toISOString() ?? null,
      sync: t.billingSync,
      lastError: t.billingError,
    },
    createdAt: t.createdAt.toISOString(),
    updatedAt: t.updatedAt.toISOString(),
  };
}

export function keyOut(k: ApiKey): z.infer<typeof KeySchema> {
  return {
    id: k.id,
    tenantId: k.tenantId,
    prefix: k.prefix,
    last4: k.last4,
    name: k.name,
    env: k.env,
    role: k.role,
    ipAllowlist: k.ipAllowlist,
    rateLimit: k.rateLimit,
    expiresAt: iso(k.expiresAt),
    revokedAt: iso(k.revokedAt),
    rotatedFromId: k.rotatedFromId,
    createdAt: k.createdAt.toISOString(),
  };
}

/** Standard error responses for the OpenAPI document. */
export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(
    statuses.map((s) => [
      s,
      { description: "Problem", content: { "application/problem+json": { schema: ProblemSchema } } },
    ]),
  );

/** `content` of a JSON request body or response in a route definition. */
export const json = <T>(schema: T) => ({ content: { "application/json": { schema } } });

/** OpenAPI security requirement of the admin API. */
export const adminSecurity = [{ adminToken: [] }];

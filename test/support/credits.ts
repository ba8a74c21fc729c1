/**
 * Prepaid-credit fixtures: a tenant on its own prepaid plan, admin top-ups, and its balance and
 * ledger as the admin API shows them.
 */
import { expect, vi } from "vitest";
import { admin, expectJson, seedTenant } from "./gateway";

export const PREPAID = {
  entitlements: ["api", "reports"],
  pricing: { model: "prepaid", currency: "usd", creditPack: { units: 100, amount: 500 } },
};

/** Roomy limits: these tests are about credits, not windows. */
export const PREPAID_LIMITS = {
  burstCapacity: 1000,
  refillTokens: 1000,
  refillPeriodSeconds: 1,
  dailyQuota: null,
  monthlyQuota: null,
};

export interface Credits {
  balance: number;
  held: number;
  ledger: {
    data: { id: string; kind: string; units: number; reason: string | null; actor: string | null }[];
  };
}

export const prepaidTenant = () => seedTenant({ plan: PREPAID });

export async function grant(tenantId: string, units: number) {
  return expectJson<{ entry: { id: string }; balance: number }>(
    await admin("POST", `/admin/v1/tenants/${tenantId}/credits`, {
      units,
      reason: "test top-up",
      actor: "ops@test",
    }),
    201,
  );
}

export const credits = async (tenantId: string) =>
  expectJson<Credits>(await admin("GET", `/admin/v1/tenants/${tenantId}/credits`), 200);
export const balance = async (tenantId: string) => (await credits(tenantId)).balance;

/** The balance once the edge's waitUntil (a release) has run. */
export const settlesAt = (tenantId: string, expected: number) =>
  vi.waitFor(async () => expect(await balance(tenantId)).toBe(expected), { timeout: 5_000 });

/** A key as the admin API answers it: what `gw keys` shows and `gw keys export` writes. */

/** A key as the admin API returns it (never its plaintext, except `key` right after creation). */
export interface Key {
  id: string;
  tenantId: string;
  prefix: string;
  last4: string;
  name: string | null;
  env: "live" | "test";
  role: "admin" | "member";
  ipAllowlist: string[];
  rateLimit: { burstCapacity: number; refillTokens: number; refillPeriodSeconds: number } | null;
  expiresAt: string | null;
  revokedAt: string | null;
  rotatedFromId: string | null;
  createdAt: string;
}

/** A key just created: the plaintext, once. */
export type CreatedKey = Key & { key: string };

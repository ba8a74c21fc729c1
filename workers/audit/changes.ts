/**
 * The `changes` of an action entry, pure: which fields of a row a change moved, each as
 * `{ before, after }` in JSON form (dates as ISO strings, absent as null) — exactly what the entry
 * stores and hashes. Each kind of row names the fields an auditor may see: never a key's hash or
 * plaintext, never a secret.
 */
import { stableJson } from "./chain";
import type { AuditDetail } from "./detail";

export type Changes = NonNullable<AuditDetail["changes"]>;

/** The fields of each audited row an entry may show. */
export const AUDITED_FIELDS = {
  plan: [
    "name",
    "burstCapacity",
    "refillTokens",
    "refillPeriodSeconds",
    "dailyQuota",
    "monthlyQuota",
    "entitlements",
    "pricing",
    "pricingVersion",
    "sandboxLimits",
    "admissionMode",
  ],
  tenant: ["slug", "name", "email", "planId", "status", "statusReason", "overrides"],
  key: [
    "prefix",
    "name",
    "env",
    "role",
    "ipAllowlist",
    "rateLimit",
    "expiresAt",
    "revokedAt",
    "rotatedFromId",
  ],
} as const;

/** A value as JSON carries it: a Date becomes its ISO string, undefined becomes null. */
export function jsonValue(value: unknown): unknown {
  if (value === undefined) return null;
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/**
 * The fields among `fields` whose value differs between `before` and `after` (null before = made,
 * null after = removed), compared as canonical JSON so key order and Date objects don't matter.
 */
export function diff(
  before: object | null | undefined,
  after: object | null | undefined,
  fields: readonly string[],
): Changes {
  const changes: Changes = {};
  const read = (row: object | null | undefined, field: string) =>
    jsonValue(row ? (row as Record<string, unknown>)[field] : null);
  for (const field of fields) {
    const was = read(before, field);
    const now = read(after, field);
    if (stableJson(was) !== stableJson(now)) changes[field] = { before: was, after: now };
  }
  return changes;
}

/** Every listed field of a new row, from null. */
export const created = (after: object, fields: readonly string[]): Changes => diff(null, after, fields);

/** One new value that is not a row's field (a report's outcome, an adjustment), from null. */
export const added = (name: string, after: unknown): Changes => ({
  [name]: { before: null, after: jsonValue(after) },
});

/**
 * Key lifecycle against Postgres (issue, revoke, rotate) plus the KV projection of each change, and
 * the tenant's event of each change (`key.created`, `key.revoked`, `key.rotated`), recorded in the
 * change's transaction and dispatched after it. The admin API, the tenant API, the portal and the
 * console all change keys through here, so each change emits exactly one event whoever made it.
 * The plaintext exists only in the return value of `issueKey`; only its SHA-256 is stored.
 */
import { and, eq, isNull } from "drizzle-orm";
import { type ApiKey, apiKeys } from "../../schema";
import type { Bindings } from "../env";
import type { NewEvent } from "../events/catalog";
import { dispatchDeliveries, recordEvents } from "../events/emit";
import { displayParts, generateKey, hashKey, type KeyEnv } from "../shared/api-keys";
import type { Db, Tx } from "../shared/db";
import { newId } from "../shared/ids";
import { projectKey } from "./projection";

export interface KeyOptions {
  env: KeyEnv;
  name: string | null;
  role: "admin" | "member";
  ipAllowlist: string[];
  expiresAt: Date | null;
  rateLimit: ApiKey["rateLimit"];
  rotatedFromId?: string | null;
}

type KeyEnvBindings = Pick<Bindings, "API_KEYS" | "TENANT" | "EVENTS_QUEUE">;

const keyCreated = (row: ApiKey): NewEvent<"key.created"> => ({
  tenantId: row.tenantId,
  type: "key.created",
  data: { keyId: row.id, env: row.env, prefix: row.prefix, name: row.name },
  at: row.createdAt,
});

/**
 * Inserts a new key for `tenantId`; returns the row and the plaintext (the only time it exists).
 * No event: `createKey` and `rotateKey` emit theirs, and a new tenant's first key (tenant-create.ts)
 * has no endpoint to go to yet.
 */
export async function issueKey(
  tx: Db | Tx,
  tenantId: string,
  options: KeyOptions,
): Promise<{ row: ApiKey; plaintext: string }> {
  const plaintext = generateKey(options.env);
  const { prefix, last4 } = displayParts(plaintext);
  const [row] = await tx
    .insert(apiKeys)
    .values({
      id: newId("key"),
      tenantId,
      hash: await hashKey(plaintext),
      prefix,
      last4,
      name: options.name,
      env: options.env,
      role: options.role,
      ipAllowlist: options.ipAllowlist,
      expiresAt: options.expiresAt,
      rateLimit: options.rateLimit,
      rotatedFromId: options.rotatedFromId ?? null,
    })
    .returning();
  return { row: row as ApiKey, plaintext };
}

/** The attributes of a key an update may change (undefined = unchanged). */
export interface KeyChanges {
  name?: string | null;
  ipAllowlist?: string[];
  rateLimit?: ApiKey["rateLimit"];
  /** ISO date-time, or null for never. */
  expiresAt?: string | null;
}

/**
 * Updates a live key and projects it to KV and the tenant object in the same request: a narrowed
 * allowlist, a tighter limit or a shortened expiry applies on the next request everywhere; an
 * extended expiry un-refuses the key. Returns undefined if the key is unknown, null if revoked.
 */
export async function updateKey(
  db: Db,
  env: Pick<Bindings, "API_KEYS" | "TENANT">,
  keyId: string,
  changes: KeyChanges,
): Promise<ApiKey | null | undefined> {
  const set: Partial<Pick<ApiKey, "name" | "ipAllowlist" | "rateLimit" | "expiresAt">> = {};
  if (changes.name !== undefined) set.name = changes.name;
  if (changes.ipAllowlist !== undefined) set.ipAllowlist = changes.ipAllowlist;
  if (changes.rateLimit !== undefined) set.rateLimit = changes.rateLimit;
  if (changes.expiresAt !== undefined)
    set.expiresAt = changes.expiresAt === null ? null : new Date(changes.expiresAt);
  const current = await db.query.apiKeys.findFirst({ where: eq(apiKeys.id, keyId) });
  if (!current) return undefined;
  if (current.revokedAt) return null;
  if (Object.keys(set).length === 0) return current;
  const [updated] = await db
    .update(apiKeys)
    .set(set)
    .where(and(eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
    .returning();
  // Revoked between the read and the update: the revocation stands.
  if (!updated) return null;
  await projectKey(env, updated);
  return updated;
}

/**
 * Revokes a key (idempotent: an already revoked key keeps its first revocation time, and only the
 * first revocation emits `key.revoked`).
 */
export async function revokeKey(db: Db, env: KeyEnvBindings, keyId: string): Promise<ApiKey | undefined> {
  const revoked = await db.transaction(async (tx) => {
    const [updated] = await tx
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
      .returning();
    if (!updated?.revokedAt) return null;
    const deliveries = await recordEvents(tx, [
      {
        tenantId: updated.tenantId,
        type: "key.revoked",
        data: { keyId: updated.id, revokedAt: updated.revokedAt.toISOString() },
        at: updated.revokedAt,
      },
    ]);
    return { row: updated, deliveries };
  });
  const row = revoked?.row ?? (await db.query.apiKeys.findFirst({ where: eq(apiKeys.id, keyId) }));
  if (row) await projectKey(env, row);
  if (revoked) await dispatchDeliveries(env, revoked.deliveries);
  return row;
}

/**
 * Rotates a key: a new key with the same attributes, and the old one expiring after the grace
 * period (never later than it already would); emits `key.rotated` (old → new, when the old stops).
 * Returns undefined if the key is unknown, and null if it is revoked or expired (nothing to rotate).
 */
export async function rotateKey(
  db: Db,
  env: KeyEnvBindings,
  keyId: string,
  gracePeriodSeconds: number,
  now: Date = new Date(),
): Promise<{ created: { row: ApiKey; plaintext: string }; previous: ApiKey } | null | undefined> {
  const rotated = await db.transaction(async (tx) => {
    const [old] = await tx.select().from(apiKeys).where(eq(apiKeys.id, keyId)).for("update");
    if (!old) return undefined;
    if (old.revokedAt || (old.expiresAt && old.expiresAt <= now)) return null;
    const graceEnd = new Date(now.getTime() + gracePeriodSeconds * 1000);
    const expiresAt = old.expiresAt && old.expiresAt < graceEnd ? old.expiresAt : graceEnd;
    const [previous] = await tx.update(apiKeys).set({ expiresAt }).where(eq(apiKeys.id, keyId)).returning();
    const created = await issueKey(tx, old.tenantId, {
      env: old.env,
      name: old.name,
      role: old.role,
      ipAllowlist: old.ipAllowlist,
      expiresAt: old.expiresAt,
      rateLimit: old.rateLimit,
      rotatedFromId: old.id,
    });
    const deliveries = await recordEvents(tx, [
      {
        tenantId: old.tenantId,
        type: "key.rotated",
        data: { keyId: old.id, newKeyId: created.row.id, oldKeyExpiresAt: expiresAt.toISOString() },
        at: now,
      },
    ]);
    return { result: { created, previous: previous as ApiKey }, deliveries };
  });
  if (!rotated) return rotated;
  await projectKey(env, rotated.result.previous);
  await projectKey(env, rotated.result.created.row);
  await dispatchDeliveries(env, rotated.deliveries);
  return rotated.result;
}

/**
 * Issues a key from API input (ISO expiry), emits `key.created`, and projects it to the edge: ready
 * on the next request.
 */
export async function createKey(
  db: Db,
  env: KeyEnvBindings,
  tenantId: string,
  input: Omit<KeyOptions, "expiresAt"> & { expiresAt: string | null },
): Promise<{ row: ApiKey; plaintext: string }> {
  const { created, deliveries } = await db.transaction(async (tx) => {
    const created = await issueKey(tx, tenantId, {
      ...input,
      expiresAt: input.expiresAt === null ? null : new Date(input.expiresAt),
    });
    return { created, deliveries: await recordEvents(tx, [keyCreated(created.row)]) };
  });
  await projectKey(env, created.row);
  await dispatchDeliveries(env, deliveries);
  return created;
}

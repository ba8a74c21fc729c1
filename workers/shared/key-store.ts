/**
 * Reads key and tenant records on the hot path: isolate cache first, then KV.
 * A warm key costs 0 KV reads; a cold one costs 2 (key, then tenant), each cached afterwards.
 *
 * Why the cache TTLs are short: KV itself is eventually consistent (60 s+ across locations), and
 * these caches add up to 30 s per isolate on top. Revocation therefore cannot depend on either;
 * the admin API also evicts the entry in the isolate that served it.
 */

import { hashKey, parseKey } from "./api-keys";
import {
  type KeyRecord,
  KeyRecordSchema,
  keyKvName,
  type TenantRecord,
  TenantRecordSchema,
  tenantKvName,
} from "./auth-context";
import { IsolateCache } from "./isolate-cache";

const POSITIVE_TTL_MS = 30_000;
const NEGATIVE_TTL_MS = 5_000;
const MAX_ENTRIES = 10_000;

const keys = new IsolateCache<KeyRecord>(MAX_ENTRIES, POSITIVE_TTL_MS, NEGATIVE_TTL_MS);
const tenants = new IsolateCache<TenantRecord>(MAX_ENTRIES, POSITIVE_TTL_MS, NEGATIVE_TTL_MS);

/**
 * Presented key → its hash: a warm key skips the checksum and the SHA-256 (a WebCrypto digest, its
 * hex and a microtask on every request). A presented key is held no longer than a key record is.
 */
const hashes = new IsolateCache<string>(MAX_ENTRIES, POSITIVE_TTL_MS, NEGATIVE_TTL_MS);

/** The hash of a presented key, or null when it is malformed (format or checksum). */
export async function presentedKeyHash(key: string): Promise<string | null> {
  const known = hashes.get(key);
  if (known) return known;
  if (!parseKey(key)) return null;
  const hash = await hashKey(key);
  hashes.set(key, hash);
  return hash;
}

/** Counts KV reads made by this isolate, so tests and benchmarks can check the hot-path budget. */
export const kvReads = { count: 0 };

async function readThrough<V>(
  cache: IsolateCache<V>,
  kv: KVNamespace,
  name: string,
  parse: (raw: unknown) => V | null,
): Promise<V | null> {
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  kvReads.count++;
  const raw = await kv.get(name, "json");
  const value = raw === null ? null : parse(raw);
  cache.set(name, value);
  return value;
}

/** The key record for a key hash, or null if unknown (or unparseable, which is treated as unknown). */
export function lookupKey(kv: KVNamespace, hash: string): Promise<KeyRecord | null> {
  return readThrough(keys, kv, keyKvName(hash), (raw) => KeyRecordSchema.safeParse(raw).data ?? null);
}

export function lookupTenant(kv: KVNamespace, tenantId: string): Promise<TenantRecord | null> {
  return readThrough(
    tenants,
    kv,
    tenantKvName(tenantId),
    (raw) => TenantRecordSchema.safeParse(raw).data ?? null,
  );
}

/** Drops this isolate's cached copies after an admin change, so this isolate sees it at once. */
export function forgetKey(hash: string): void {
  keys.delete(keyKvName(hash));
}

export function forgetTenant(tenantId: string): void {
  tenants.delete(tenantKvName(tenantId));
}

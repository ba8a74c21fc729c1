/**
 * `Idempotency-Key` on the control plane's creating POSTs (tenant create, key create, rotate), with
 * the proxy's semantics and its pure state machine (durable-objects/idempotency.ts): the first
 * request proceeds and its response is recorded; the same key and request again gets that response
 * replayed with `Idempotent-Replayed: true` (a retried create never makes a second tenant or key);
 * the same key while the first is in flight → 409; with another request → 422; malformed → 400;
 * kept 24 h; a 5xx releases the key. Scoped: the admin API shares one scope, each tenant has its own.
 *
 * Records live in Postgres (schema/idempotency-keys.ts). A record is claimed with
 * `INSERT … ON CONFLICT DO NOTHING` and settled with an UPDATE guarded by the holder's lease token;
 * no transaction is held open while the request runs (the embedded PGlite runs one query at a time).
 *
 * The recorded body holds a created key's plaintext, so it is never stored in the clear: it is
 * encrypted with AES-256-GCM under a key derived (HKDF-SHA-256) from the Idempotency-Key itself,
 * salted with `CLAIMS_SECRET`; the Idempotency-Key is stored only as its SHA-256. A database dump
 * alone cannot show a key, and a client that lost the first response (the reason it retries) gets its
 * plaintext back — as Stripe replays the whole first response. If `CLAIMS_SECRET` has changed since,
 * the record cannot be read: 409 `conflict`, and nothing is created twice.
 */
import { and, eq, lte, sql } from "drizzle-orm";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import {
  decide,
  fingerprint,
  type IdempotencyRecord,
  MAX_RECORDED_BODY_BYTES,
  RETENTION_MS,
} from "../../durable-objects/idempotency";
import { sha256Hex } from "../../durable-objects/sha256";
import { type IdempotencyKeyRow, idempotencyKeys } from "../../schema";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { log } from "../log";
import type { Db } from "../shared/db";
import { idempotencyRefusal, requireIdempotencyKey } from "../shared/idempotency-key";

/** How long a request may hold the key; longer than any control-plane request (Stripe, Postgres, the DO). */
export const LEASE_MS = 60_000;
/** Expired records a new claim deletes on its way: the table stays near its live size, no cron needed. */
const PRUNE_BATCH = 10;
/** Per-request headers: the replay gets its own. */
const NOT_RECORDED = new Set(["x-request-id", "x-response-time", "server-timing", "date"]);

/** The scope of the admin API's keys. */
export const adminScope = (): string => "admin";
/** The scope of a tenant's keys on the tenant API: never shared with another tenant or the admin. */
export const tenantScope = (c: Context<AppEnv>): string => `tenant:${c.var.auth.tenant.id}`;

/** The record's primary key for an Idempotency-Key value: its SHA-256, never the value itself. */
export const idempotencyKeyHash = (key: string): Promise<string> => sha256Hex(key);

type Claim =
  | { kind: "new"; leaseToken: string }
  | { kind: "replay"; row: IdempotencyKeyRow }
  | { kind: "in_flight" }
  | { kind: "mismatch" };

/**
 * The middleware: `idempotent(adminScope)` on admin routes, `idempotent(tenantScope)` on tenant routes
 * (after the tenant door, so `c.var.auth` is the caller's). Without the header the request runs as is.
 */
export const idempotent = (scopeOf: (c: Context<AppEnv>) => string) =>
  createMiddleware<AppEnv>(async function idempotent(c, next) {
    const header = c.req.header("idempotency-key");
    if (header === undefined) {
      await next();
      return;
    }
    const key = requireIdempotencyKey(header);
    // Hono caches the body, so the route's JSON validator still reads it after us.
    const body = await c.req.arrayBuffer();
    const url = new URL(c.req.url);
    const scope = scopeOf(c);
    const keyHash = await idempotencyKeyHash(key);
    const claimed = await claim(c.var.db, {
      scope,
      keyHash,
      fingerprint: await fingerprint(c.req.method, url.pathname + url.search, body),
    });

    switch (claimed.kind) {
      case "in_flight":
      case "mismatch":
        throw idempotencyRefusal(claimed.kind);
      case "replay":
        return await replay(claimed.row, await bodyKey(c.env.CLAIMS_SECRET, scope, key));
      case "new": {
        await next();
        await settle(c, { scope, keyHash, leaseToken: claimed.leaseToken }, key);
      }
    }
  });

/** Claims the key, or says why not. A lapsed lease or an expired record is taken over. */
async function claim(
  db: Db,
  id: { scope: string; keyHash: string; fingerprint: string },
  now: number = Date.now(),
): Promise<Claim> {
  const where = and(eq(idempotencyKeys.scope, id.scope), eq(idempotencyKeys.keyHash, id.keyHash));
  const lease = () => ({
    fingerprint: id.fingerprint,
    state: "in_flight" as const,
    leaseToken: crypto.randomUUID(),
    leaseUntil: new Date(now + LEASE_MS),
    expiresAt: new Date(now + RETENTION_MS),
  });
  // Two rounds are enough: a row can vanish (pruned) or be taken over between our reads only once.
  for (let round = 0; round < 2; round++) {
    const fresh = lease();
    const [inserted] = await db
      .insert(idempotencyKeys)
      .values({ scope: id.scope, keyHash: id.keyHash, ...fresh })
      .onConflictDoNothing()
      .returning({ leaseToken: idempotencyKeys.leaseToken });
    if (inserted) {
      await prune(db, now);
      return { kind: "new", leaseToken: inserted.leaseToken };
    }
    const row = await db.query.idempotencyKeys.findFirst({ where });
    if (!row) continue;
    const decision = decide(toRecord(row), id.fingerprint, now);
    if (decision.kind === "replay") return { kind: "replay", row };
    if (decision.kind !== "new") return decision;
    // Expired, or a lease its holder never settled: take it over unless someone else just did.
    const [taken] = await db
      .update(idempotencyKeys)
      .set({
        ...fresh,
        responseStatus: null,
        responseHeaders: null,
        responseBody: null,
        createdAt: new Date(now),
      })
      .where(and(where, eq(idempotencyKeys.leaseToken, row.leaseToken)))
      .returning({ leaseToken: idempotencyKeys.leaseToken });
    if (taken) return { kind: "new", leaseToken: taken.leaseToken };
  }
  return { kind: "in_flight" };
}

/** Records the response for replay (status < 500), or releases the key so a retry runs again. */
async function settle(
  c: Context<AppEnv>,
  id: { scope: string; keyHash: string; leaseToken: string },
  key: string,
): Promise<void> {
  const db = c.var.db;
  const held = and(
    eq(idempotencyKeys.scope, id.scope),
    eq(idempotencyKeys.keyHash, id.keyHash),
    eq(idempotencyKeys.leaseToken, id.leaseToken),
  );
  try {
    const res = c.res;
    const body = res.status < 500 ? await res.clone().arrayBuffer() : null;
    if (!body || body.byteLength > MAX_RECORDED_BODY_BYTES) {
      await db.delete(idempotencyKeys).where(held);
      return;
    }
    const headers: [string, string][] = [];
    res.headers.forEach((value, name) => {
      if (!NOT_RECORDED.has(name)) headers.push([name, value]);
    });
    await db
      .update(idempotencyKeys)
      .set({
        state: "done",
        responseStatus: res.status,
        responseHeaders: headers,
        responseBody: await seal(body, await bodyKey(c.env.CLAIMS_SECRET, id.scope, key)),
      })
      .where(held);
  } catch (error) {
    // The response stands (what it created exists); a retry within the lease gets 409, after it runs again.
    log.error("idempotency record not settled", { request_id: c.var.requestId, error: String(error) });
  }
}

async function replay(row: IdempotencyKeyRow, cryptoKey: CryptoKey): Promise<Response> {
  const body = await open(row.responseBody ?? "", cryptoKey);
  if (!body) {
    throw new GatewayError(
      "conflict",
      "The response recorded for this Idempotency-Key can no longer be read (the server's secret changed). Check what the first request created before retrying with a new key.",
    );
  }
  const headers = new Headers(row.responseHeaders ?? []);
  headers.set("idempotent-replayed", "true");
  return new Response(body, { status: row.responseStatus ?? 200, headers });
}

async function prune(db: Db, now: number): Promise<void> {
  await db.execute(sql`
    delete from ${idempotencyKeys} where (scope, key_hash) in (
      select scope, key_hash from ${idempotencyKeys}
      where ${lte(idempotencyKeys.expiresAt, new Date(now))} limit ${PRUNE_BATCH})`);
}

function toRecord(row: IdempotencyKeyRow): IdempotencyRecord {
  return {
    fingerprint: row.fingerprint,
    state: row.state,
    leaseUntil: row.leaseUntil.getTime(),
    expiresAt: row.expiresAt.getTime(),
    // `decide` only needs to know a response exists; the body is opened when replayed.
    response:
      row.state === "done" && row.responseStatus !== null
        ? { status: row.responseStatus, headers: row.responseHeaders ?? [], body: new ArrayBuffer(0) }
        : null,
  };
}

const encoder = new TextEncoder();

/** AES-256-GCM key for one record: HKDF-SHA-256 over the Idempotency-Key, salted with the server secret. */
async function bodyKey(secret: string, scope: string, key: string): Promise<CryptoKey> {
  const ikm = await crypto.subtle.importKey("raw", encoder.encode(key), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    {
      name: "HKDF",
      hash: "SHA-256",
      salt: encoder.encode(secret),
      info: encoder.encode(`gateway idempotency record v1\n${scope}`),
    },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

const IV_BYTES = 12;

async function seal(body: ArrayBuffer, cryptoKey: CryptoKey): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, cryptoKey, body));
  const out = new Uint8Array(IV_BYTES + sealed.byteLength);
  out.set(iv, 0);
  out.set(sealed, IV_BYTES);
  return toBase64(out);
}

async function open(sealed: string, cryptoKey: CryptoKey): Promise<ArrayBuffer | null> {
  try {
    const bytes = fromBase64(sealed);
    return await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: bytes.subarray(0, IV_BYTES) },
      cryptoKey,
      bytes.subarray(IV_BYTES),
    );
  } catch {
    return null;
  }
}

function toBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000)
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/**
 * Authenticates the API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`).
 * Order matters for cost: format and checksum are checked before hashing (a key seen before in this
 * isolate is not hashed again), and the hash is looked up in the isolate cache before KV. Rejected
 * requests never reach the Durable Object or origin.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { lookupKey, lookupTenant, presentedKeyHash } from "../shared/key-store";

/**
 * The Bearer challenge (RFC 6750 §3). Without credentials it carries no error code (§3.1: "the
 * resource server SHOULD NOT include an error code"); a malformed credential is `invalid_request`
 * (400); a key that is unknown, malformed as a key, revoked or expired is `invalid_token` (401).
 */
const challenge = (error?: "invalid_request" | "invalid_token") => ({
  "www-authenticate": error ? `Bearer realm="gateway", error="${error}"` : 'Bearer realm="gateway"',
});

/** A 401 `invalid_token` with the Bearer challenge (also used when the tenant object reports a key revoked or expired). */
export const reject = (detail: string) =>
  new GatewayError("unauthorized", detail, { headers: challenge("invalid_token") });

/** A 400 `invalid_request`: the credential itself is malformed (RFC 6750 §3.1). */
const malformed = (detail: string) =>
  new GatewayError("invalid_request", detail, { headers: challenge("invalid_request") });

/** The presented key, or throws when none, a malformed one, or two different ones are presented. */
function presentedKey(authorization: string | undefined, apiKey: string | undefined): string {
  let bearer: string | undefined;
  if (authorization !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!match) throw malformed("The Authorization header must use the Bearer scheme: `Bearer <key>`.");
    bearer = match[1];
  }
  // Only the optional whitespace HTTP allows around a field value (RFC 9110 §5.5): SP and HTAB.
  const headerKey = apiKey?.replace(/^[ \t]+|[ \t]+$/g, "");
  const key = bearer ?? headerKey;
  if (bearer !== undefined && headerKey !== undefined && headerKey !== bearer) {
    throw malformed("Authorization and X-API-Key carry different keys.");
  }
  if (!key) throw new GatewayError("unauthorized", "An API key is required.", { headers: challenge() });
  return key;
}

export const authenticate = () =>
  createMiddleware<AppEnv>(async function authenticate(c, next) {
    const key = presentedKey(c.req.header("authorization"), c.req.header("x-api-key"));
    const hash = await presentedKeyHash(key);
    if (hash === null) throw reject("The API key is malformed.");

    const record = await lookupKey(c.env.API_KEYS, hash);
    if (!record) throw reject("The API key is not valid.");
    const now = Date.now();
    if (record.revokedAt !== null && record.revokedAt <= now) throw reject("The API key has been revoked.");
    if (record.expiresAt !== null && record.expiresAt <= now) throw reject("The API key has expired.");

    const tenant = await lookupTenant(c.env.API_KEYS, record.tenantId);
    if (!tenant) throw reject("The API key is not valid.");

    c.set("auth", { key: record, tenant });
    await next();
  });

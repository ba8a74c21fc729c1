/**
 * Authenticates the API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`).
 * Order matters for cost: format and checksum are checked before hashing, and the hash is looked
 * up in the isolate cache before KV. Rejected requests never reach the Durable Object or origin.
 */
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { hashKey, parseKey } from "../shared/api-keys";
import { lookupKey, lookupTenant } from "../shared/key-store";

const challenge = (error: string) => ({ "www-authenticate": `Bearer realm="gateway", error="${error}"` });

/** A 401 with the Bearer challenge (also used when the tenant object reports a key revoked or expired). */
export const reject = (detail: string, error = "invalid_token") =>
  new GatewayError("unauthorized", detail, { headers: challenge(error) });

/** The presented key, or throws when none or two different ones are presented. */
function presentedKey(authorization: string | undefined, apiKey: string | undefined): string {
  let bearer: string | undefined;
  if (authorization !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    if (!match) throw reject("The Authorization header must use the Bearer scheme.", "invalid_request");
    bearer = match[1];
  }
  // Only the optional whitespace HTTP allows around a field value (RFC 9110 §5.5): SP and HTAB.
  const headerKey = apiKey?.replace(/^[ \t]+|[ \t]+$/g, "");
  const key = bearer ?? headerKey;
  if (bearer !== undefined && headerKey !== undefined && headerKey !== bearer) {
    throw reject("Authorization and X-API-Key carry different keys.", "invalid_request");
  }
  if (!key)
    throw new GatewayError("unauthorized", "An API key is required.", {
      headers: challenge("invalid_request"),
    });
  return key;
}

export const authenticate = () =>
  createMiddleware<AppEnv>(async function authenticate(c, next) {
    const key = presentedKey(c.req.header("authorization"), c.req.header("x-api-key"));
    if (!parseKey(key)) throw reject("The API key is malformed.");

    const record = await lookupKey(c.env.API_KEYS, await hashKey(key));
    if (!record) throw reject("The API key is not valid.");
    const now = Date.now();
    if (record.revokedAt !== null && record.revokedAt <= now) throw reject("The API key has been revoked.");
    if (record.expiresAt !== null && record.expiresAt <= now) throw reject("The API key has expired.");

    const tenant = await lookupTenant(c.env.API_KEYS, record.tenantId);
    if (!tenant) throw reject("The API key is not valid.");

    c.set("auth", { key: record, tenant });
    await next();
  });

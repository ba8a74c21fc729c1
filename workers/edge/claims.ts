/**
 * Signed tenant claims the gateway sends to the origin in `X-Gateway-Claims`: a compact HS256 JWT
 * (RFC 7519) over the tenant id, key id, plan, role, env and request id, valid for 5 minutes; a
 * shadow copy's claims also say `shadow: true`.
 *
 * The origin verifies with the shared `CLAIMS_SECRET` — with any JWT library, or with
 * `verifyGatewayClaims` below, which runs on Workers and on Node ≥ 20 (WebCrypto only):
 *
 *   const claims = await verifyGatewayClaims(req.headers.get("x-gateway-claims"), process.env.CLAIMS_SECRET);
 *   // claims.sub === tenant id; throws if the signature, issuer, audience or expiry is wrong.
 */
import { verify } from "hono/jwt";
import { base64url, utf8 } from "../../durable-objects/encoding";

export const CLAIMS_HEADER = "x-gateway-claims";
export const CLAIMS_ISSUER = "edge-gateway";
export const CLAIMS_AUDIENCE = "origin";
const LIFETIME_SECONDS = 300;

export interface GatewayClaims {
  /** Tenant id. */
  sub: string;
  /** Tenant slug. */
  tenant: string;
  key_id: string;
  plan: string;
  role: "admin" | "member";
  env: "live" | "test";
  request_id: string;
  /** Present (true) only on a shadow copy (workers/edge/shadow.ts): the client is not waiting for it; act on nothing. */
  shadow?: true;
  iss: string;
  aud: string;
  iat: number;
  exp: number;
}

export type ClaimsInput = Omit<GatewayClaims, "iss" | "aud" | "iat" | "exp">;

/** base64url of UTF-8 text or of bytes. */
const encode = (data: string | ArrayBuffer): string =>
  base64url(typeof data === "string" ? utf8.encode(data) : new Uint8Array(data));

const HEADER = encode(JSON.stringify({ alg: "HS256", typ: "JWT" }));

/**
 * The HMAC key, imported once per secret per isolate: importing it (what a JWT library does on every
 * call) cost as much as the signature itself in the hot-path profile (docs/BENCHMARKS.md).
 */
let signingKey: { secret: string; key: Promise<CryptoKey> } | undefined;

function keyFor(secret: string): Promise<CryptoKey> {
  if (signingKey?.secret !== secret) {
    const key = crypto.subtle.importKey(
      "raw",
      utf8.encode(secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["sign"],
    );
    signingKey = { secret, key };
  }
  return signingKey.key;
}

/** Signs claims for one proxied request: a compact HS256 JWT any JWT library verifies. */
export async function signGatewayClaims(
  input: ClaimsInput,
  secret: string,
  now: number = Date.now(),
): Promise<string> {
  const iat = Math.floor(now / 1000);
  const claims: GatewayClaims = {
    ...input,
    iss: CLAIMS_ISSUER,
    aud: CLAIMS_AUDIENCE,
    iat,
    exp: iat + LIFETIME_SECONDS,
  };
  const signingInput = `${HEADER}.${encode(JSON.stringify(claims))}`;
  const signature = await crypto.subtle.sign("HMAC", await keyFor(secret), utf8.encode(signingInput));
  return `${signingInput}.${encode(signature)}`;
}

/** Verifies the header value an origin received; throws on a bad signature, issuer, audience or expiry. */
export async function verifyGatewayClaims(token: string | null, secret: string): Promise<GatewayClaims> {
  if (!token) throw new Error("missing gateway claims");
  const payload = await verify(token, secret, { alg: "HS256", iss: CLAIMS_ISSUER, aud: CLAIMS_AUDIENCE });
  return payload as unknown as GatewayClaims;
}

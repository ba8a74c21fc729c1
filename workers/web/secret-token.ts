/**
 * The random tokens the web faces hand out (session cookies, one-time link codes) and how they are
 * stored: 32 random bytes, base64url (43 characters), kept only as SHA-256 hex. A token is checked by
 * hashing what the browser sent and looking the hash up — an equality on a hash of 256 random bits,
 * so the lookup leaks nothing useful through its timing.
 */
import { base64url } from "../../durable-objects/encoding";
import { sha256Hex } from "../../durable-objects/sha256";

/** base64url of 32 random bytes. */
export function newSecretToken(): string {
  return base64url(crypto.getRandomValues(new Uint8Array(32)));
}

/** What the database keeps of a token. */
export const hashSecretToken = (token: string): Promise<string> => sha256Hex(token);

/** A token as `newSecretToken` makes them: anything else is refused before any lookup. */
export const isWellFormedToken = (token: string | undefined): token is string =>
  token !== undefined && /^[A-Za-z0-9_-]{43}$/.test(token);

/**
 * API key format, checksum and hashing. Pure: no I/O.
 *
 * A key is `gw_<env>_<24 random base62><6 base62 CRC32 checksum>`. The checksum covers
 * everything before it, so typos and junk are rejected before any cache, KV or Durable Object
 * lookup. Only the SHA-256 (hex) of a key is ever stored; the plaintext is shown once.
 */
import { sha256Hex } from "../../durable-objects/sha256";

export type KeyEnv = "live" | "test";

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LENGTH = 24;
const CHECKSUM_LENGTH = 6;
const KEY_PATTERN = /^gw_(live|test)_([0-9A-Za-z]{30})$/;

/** Maximum length we even look at; anything longer is rejected without hashing. */
export const MAX_KEY_LENGTH = 64;

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = (CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] as number) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** The 6 base62 digits of the CRC-32 of `body` (what a key ends with). */
export function checksum(body: string): string {
  let n = crc32(body);
  let out = "";
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** Generates a new plaintext key for `env`. */
export function generateKey(env: KeyEnv): string {
  // Rejection sampling keeps every base62 character uniformly likely.
  let random = "";
  while (random.length < RANDOM_LENGTH) {
    for (const byte of crypto.getRandomValues(new Uint8Array(32))) {
      if (byte < 248 && random.length < RANDOM_LENGTH) random += BASE62[byte % 62];
    }
  }
  const body = `gw_${env}_${random}`;
  return body + checksum(body);
}

/** The env of a well-formed key with a valid checksum, or null for anything else. */
export function parseKey(key: string): { env: KeyEnv } | null {
  if (key.length > MAX_KEY_LENGTH) return null;
  const match = KEY_PATTERN.exec(key);
  if (!match) return null;
  const body = key.slice(0, key.length - CHECKSUM_LENGTH);
  if (checksum(body) !== key.slice(-CHECKSUM_LENGTH)) return null;
  return { env: match[1] as KeyEnv };
}

/** SHA-256 of the key, lower-case hex: the only form stored in Postgres and KV. */
export function hashKey(key: string): Promise<string> {
  return sha256Hex(key);
}

/** What may be shown of a key after creation: its prefix (`gw_live_Ab12`) and last 4 characters. */
export function displayParts(key: string): { prefix: string; last4: string } {
  const envEnd = key.indexOf("_", 3) + 1;
  return { prefix: key.slice(0, envEnd + 4), last4: key.slice(-4) };
}

/**
 * Byte encodings, natively where the runtime has TC39's "Uint8Array to/from base64"
 * (`toBase64`, `toHex`: workerd does) and in JavaScript where it does not (Node 20, where origins
 * verify claims and the CLI runs). The JavaScript versions were the costliest lines of claims
 * signing and key hashing in the hot-path profile (docs/BENCHMARKS.md).
 */

type Encodable = Uint8Array & {
  toBase64?: (options: { alphabet: "base64url"; omitPadding: boolean }) => string;
  toHex?: () => string;
};

const BASE64URL = { alphabet: "base64url", omitPadding: true } as const;

/** Every byte's two hex digits, built once (the fallback). */
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));

/** One encoder per isolate. */
export const utf8 = new TextEncoder();

/** base64url (RFC 4648 §5), unpadded. */
export function base64url(bytes: Uint8Array): string {
  const b: Encodable = bytes;
  if (b.toBase64) return b.toBase64(BASE64URL);
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

/** Lower-case hex. */
export function hex(bytes: Uint8Array): string {
  const b: Encodable = bytes;
  if (b.toHex) return b.toHex();
  let out = "";
  for (const byte of bytes) out += HEX[byte];
  return out;
}

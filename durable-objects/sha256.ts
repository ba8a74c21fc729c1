/** SHA-256 as lower-case hex (WebCrypto; works in Workers and Node ≥ 20). Hashing an API key is on every request's path. */
import { hex, utf8 } from "./encoding";

export async function sha256Hex(data: string | BufferSource): Promise<string> {
  const bytes = typeof data === "string" ? utf8.encode(data) : data;
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
}

/**
 * Idempotency-Key state machine (IETF httpapi Idempotency-Key draft). Pure.
 *
 * A key is scoped to one tenant and kept 24 h. The first request holds an "in flight" lease; when
 * its response arrives the response is recorded and later requests with the same fingerprint get
 * it replayed. A lease that is never completed (worker evicted, client gone, origin failed and
 * the release lost) simply runs out, so no key stays stuck.
 */
import { sha256Hex } from "./sha256";

export const RETENTION_MS = 24 * 60 * 60 * 1000;
/** Largest response body recorded for replay; larger responses are not recorded (the key is released). */
export const MAX_RECORDED_BODY_BYTES = 1024 * 1024;
const MAX_KEY_LENGTH = 255;

export interface RecordedResponse {
  status: number;
  headers: [string, string][];
  body: ArrayBuffer;
}

export interface IdempotencyRecord {
  fingerprint: string;
  state: "in_flight" | "done";
  /** In flight until this epoch ms; after it, another request may take the key over. */
  leaseUntil: number;
  expiresAt: number;
  response: RecordedResponse | null;
}

export type IdempotencyDecision =
  | { kind: "new" }
  | { kind: "replay"; response: RecordedResponse }
  | { kind: "in_flight" }
  | { kind: "mismatch" };

export function decide(
  record: IdempotencyRecord | null,
  fingerprint: string,
  now: number,
): IdempotencyDecision {
  if (!record || record.expiresAt <= now) return { kind: "new" };
  if (record.fingerprint !== fingerprint) return { kind: "mismatch" };
  if (record.state === "done" && record.response) return { kind: "replay", response: record.response };
  if (record.leaseUntil > now) return { kind: "in_flight" };
  return { kind: "new" };
}

/**
 * Parses the header value: the draft's RFC 8941 sf-string (`"8e03…"`: printable ASCII including
 * space, with `\"` and `\\` escapes) or the bare token Stripe-style clients send (printable ASCII,
 * no space or quote). Returns the key, or null if malformed or blank.
 */
export function parseIdempotencyKey(value: string): string | null {
  const raw = value.replace(/^[ \t]+|[ \t]+$/g, "");
  let key: string;
  if (raw.startsWith('"')) {
    const match = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/.exec(raw);
    if (!match) return null;
    key = (match[1] as string).replace(/\\(["\\])/g, "$1");
  } else {
    if (!/^[\x21\x23-\x7e]+$/.test(raw)) return null;
    key = raw;
  }
  // A key of nothing but spaces is a client bug, not a key.
  return key.trim().length > 0 && key.length <= MAX_KEY_LENGTH ? key : null;
}

/** SHA-256 over method, path with query, and the body: what makes two requests "the same". */
export function fingerprint(method: string, pathAndQuery: string, body: ArrayBuffer): Promise<string> {
  const head = new TextEncoder().encode(`${method.toUpperCase()} ${pathAndQuery}\n`);
  const bytes = new Uint8Array(head.byteLength + body.byteLength);
  bytes.set(head, 0);
  bytes.set(new Uint8Array(body), head.byteLength);
  return sha256Hex(bytes);
}

/**
 * The `Idempotency-Key` header's errors, the same on the proxy (the tenant object keeps the records)
 * and on the control plane (Postgres keeps them): a malformed key (400), a key still in flight (409),
 * a key reused with a different request (422).
 */
import { parseIdempotencyKey } from "../../durable-objects/idempotency";
import { GatewayError } from "../errors";

/** The key carried by the header, or a 400 when it is malformed. */
export function requireIdempotencyKey(header: string): string {
  const key = parseIdempotencyKey(header);
  if (!key) {
    throw new GatewayError(
      "bad_request",
      "Idempotency-Key must be 1-255 printable ASCII characters, optionally quoted.",
    );
  }
  return key;
}

/** Why a request with a known key cannot proceed: the first is still in flight, or it was another request. */
export function idempotencyRefusal(kind: "in_flight" | "mismatch"): GatewayError {
  return kind === "in_flight"
    ? new GatewayError(
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still in progress. Retry after it completes.",
        { headers: { "retry-after": "1" } },
      )
    : new GatewayError(
        "idempotency_key_mismatch",
        "This Idempotency-Key was used with a different request (method, path or body).",
      );
}

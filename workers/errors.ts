/**
 * The closed list of error codes the gateway itself produces, their HTTP status, and the one
 * RFC 9457 problem+json builder. `app.onError` is the only place that turns errors into responses.
 * Errors from the origin are not ours: they pass through untouched.
 */

export const ERROR_CODES = {
  unauthorized: { status: 401, title: "Unauthorized" },
  forbidden: { status: 403, title: "Forbidden" },
  tenant_suspended: { status: 403, title: "Tenant suspended" },
  payment_required: { status: 402, title: "Payment required" },
  /** A prepaid tenant's request costs more credits than its balance holds. */
  credits_exhausted: { status: 402, title: "Credits exhausted" },
  plan_upgrade_required: { status: 403, title: "Plan upgrade required" },
  ip_not_allowed: { status: 403, title: "IP address not allowed" },
  not_found: { status: 404, title: "Not found" },
  method_not_allowed: { status: 405, title: "Method not allowed" },
  conflict: { status: 409, title: "Conflict" },
  rate_limited: { status: 429, title: "Rate limited" },
  quota_exceeded: { status: 429, title: "Quota exceeded" },
  idempotency_key_in_use: { status: 409, title: "Idempotency key in use" },
  idempotency_key_mismatch: { status: 422, title: "Idempotency key reused with a different request" },
  bad_request: { status: 400, title: "Bad request" },
  /** A malformed credential (RFC 6750 §3.1 `invalid_request`): not the Bearer scheme, or two different keys. */
  invalid_request: { status: 400, title: "Invalid request" },
  validation_failed: { status: 400, title: "Validation failed" },
  payload_too_large: { status: 413, title: "Payload too large" },
  unsupported_media_type: { status: 415, title: "Unsupported media type" },
  origin_timeout: { status: 504, title: "Origin timeout" },
  origin_unavailable: { status: 502, title: "Origin unavailable" },
  service_unavailable: { status: 503, title: "Service unavailable" },
  /** The route's origin is degraded and this tenant is over its fair share of it: shed, not billed, with Retry-After. */
  origin_overloaded: { status: 503, title: "Origin overloaded" },
  /** A var or secret fails workers/config.ts's schema; the detail names it. */
  misconfigured: { status: 503, title: "Gateway misconfigured" },
  internal: { status: 500, title: "Internal error" },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base URI for problem `type`s; each code has its own documented URI. */
export const PROBLEM_TYPE_BASE = "https://gateway.dev/problems/";

/** One field-level validation problem, as in the `errors` extension member. */
export interface FieldError {
  path: string;
  message: string;
}

/** A failure the gateway reports to the client. Middleware and routes throw it; onError renders it. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly errors: FieldError[] | undefined;

  constructor(
    code: ErrorCode,
    detail: string,
    options: { headers?: Record<string, string>; errors?: FieldError[] } = {},
  ) {
    super(detail);
    this.name = "GatewayError";
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.headers = options.headers ?? {};
    this.errors = options.errors;
  }
}

/** Renders a problem+json response. `requestId` is echoed in the body and the header. */
export function problemResponse(error: GatewayError, requestId: string): Response {
  const body: Record<string, unknown> = {
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: ERROR_CODES[error.code].title,
    status: error.status,
    detail: error.message,
    code: error.code,
    request_id: requestId,
  };
  if (error.errors) body.errors = error.errors;
  const headers = new Headers(error.headers);
  headers.set("content-type", "application/problem+json");
  headers.set("x-request-id", requestId);
  return new Response(JSON.stringify(body), { status: error.status, headers });
}

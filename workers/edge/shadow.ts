/**
 * Shadow traffic: a route may name a shadow origin (route-table.ts `shadow`). A sample of its
 * admitted live requests is copied there, and the shadow's answer is compared with the primary's:
 * status, SHA-256 of the body, the route's chosen headers, and latency.
 *
 * The client never waits for the copy nor sees it: the copy leaves from waitUntil once the
 * primary's headers are in; the primary's body is teed (the client's branch streams as before, ours
 * is read up to SHADOW_MAX_BODY_BYTES for its hash); every wait is bounded by the shadow's
 * `timeoutMs`, and a failing or hanging shadow only counts as `failed`. An unsampled request costs
 * one Math.random() (none on a route without a shadow, for a method not listed, or a test key —
 * test keys go to the sandbox, which is not what the shadow stands in for).
 *
 * Never billed: the copy makes no tenant-object call, has no usage event and spends no quota. It
 * carries the primary's origin headers (the client's Authorization and X-API-Key never reach any
 * origin: workers/edge/origin.ts) minus the client's cookies, the same `X-Request-ID`,
 * `X-Gateway-Shadow: 1`, and claims that say `shadow: true`.
 *
 * Where the comparison goes: the sampled request's own usage event waits for it (bounded as above)
 * and carries it (`shadow`); the consumer counts it only when it newly inserts that event
 * (workers/metering/shadow-sink.ts). Why not an item of its own on the queue: queues deliver at
 * least once, and hourly counters have no key of their own to dedupe on, so they would double on a
 * redelivery; the usage row's `ON CONFLICT DO NOTHING` already decides "first time" per request id,
 * in the same transaction, with no extra message or table. The price: a sampled request's usage
 * reaches Postgres up to a few timeouts later.
 *
 * Bodies past SHADOW_MAX_BODY_BYTES: a response body that large (on either side), or one the
 * primary has not finished within the timeout, is not hashed, so the body is not compared (status
 * and headers still are). A request body (a listed method other than GET/HEAD) is copied only when
 * its size is known and within the bound: the buffered body of an Idempotency-Key request, or a
 * stream with a Content-Length ≤ SHADOW_MAX_BODY_BYTES (teed); a larger one, or one of unknown length
 * (chunked), is not shadowed.
 */
import type { ShadowComparison } from "../metering/usage-event";
import { MAX_SHADOW_HEADER_VALUE, MAX_SHADOW_PATH } from "../metering/usage-event";
import { CLAIMS_HEADER, type ClaimsInput, signGatewayClaims } from "./claims";
import { readUpTo } from "./read-body";
import type { RouteShadow } from "./route-table";

/** Largest body (request copy, or response for its hash) held for a comparison. */
export const SHADOW_MAX_BODY_BYTES = 1024 * 1024;
/** Marks the copy for the shadow origin (besides the `shadow: true` claim). */
export const SHADOW_HEADER = "x-gateway-shadow";
/** Client headers an origin may see but a shadow must not: the client's own session. */
const NOT_FOR_THE_SHADOW = ["cookie"];

/** A request body as the proxy sends it. */
export type ProxiedBody = ArrayBuffer | ReadableStream<Uint8Array> | null;

/** A sampled request, before the primary is called. */
export interface ShadowCopy {
  /** The body to send the primary (a teed stream when the shadow needs a copy of it). */
  primaryBody: ProxiedBody;
  /** The shadow's copy of the request body: null = none; undefined = could not be had (not shadowed). */
  requestBody: Promise<ArrayBuffer | null | undefined>;
}

/**
 * Whether this request is copied to the route's shadow, and if so its request body's copy. Cheap
 * checks first; one Math.random() for a request that could be copied.
 */
export function sampleShadow(
  shadow: RouteShadow,
  request: { method: string; env: "live" | "test"; body: ProxiedBody; contentLength: string | undefined },
  random: () => number = Math.random,
): ShadowCopy | undefined {
  if (request.env !== "live" || !(shadow.methods as readonly string[]).includes(request.method)) return;
  if (!(random() < shadow.sampleRate)) return;
  const { body } = request;
  if (body === null || body instanceof ArrayBuffer)
    return { primaryBody: body, requestBody: Promise.resolve(body) };
  const length = /^\d{1,16}$/.test(request.contentLength ?? "") ? Number(request.contentLength) : Number.NaN;
  if (!(length <= SHADOW_MAX_BODY_BYTES)) return;
  const [primaryBody, copy] = body.tee();
  return {
    primaryBody,
    requestBody: readUpTo(copy, SHADOW_MAX_BODY_BYTES).then(
      (bytes) => bytes ?? undefined,
      () => undefined,
    ),
  };
}

/** One side's answer, as compared. */
export interface Observed {
  status: number;
  /** The chosen headers' values (null: absent). */
  headers: Record<string, string | null>;
  /** Hex SHA-256 of the body; null = not hashed (over the bound, or not finished in time). */
  bodyHash: string | null;
  /** From sending the request to the end of the body (or the bound). */
  ms: number;
}

/** The comparison of the primary's answer with the shadow's (null: the shadow failed). Pure. */
export function compareAnswers(primary: Observed, shadow: Observed | null, path: string): ShadowComparison {
  const base = { path: path.slice(0, MAX_SHADOW_PATH), primaryMs: primary.ms };
  if (!shadow) return { outcome: "failed", ...base, shadowMs: 0 };
  const diff: NonNullable<ShadowComparison["diff"]> = {};
  if (primary.status !== shadow.status) diff.status = { primary: primary.status, shadow: shadow.status };
  if (primary.bodyHash !== null && shadow.bodyHash !== null && primary.bodyHash !== shadow.bodyHash)
    diff.body = { primary: primary.bodyHash, shadow: shadow.bodyHash };
  for (const [name, value] of Object.entries(primary.headers)) {
    const other = shadow.headers[name] ?? null;
    if (value === other) continue;
    const cut = (v: string | null) => v?.slice(0, MAX_SHADOW_HEADER_VALUE) ?? null;
    diff.headers ??= {};
    diff.headers[name] = [cut(value), cut(other)];
  }
  const mismatched = Object.keys(diff).length > 0;
  return mismatched
    ? { outcome: "mismatched", ...base, shadowMs: shadow.ms, diff }
    : { outcome: "matched", ...base, shadowMs: shadow.ms };
}

/** The shadow copy's request headers: the primary's minus the client's cookies, with the shadow's claims. */
export function shadowRequestHeaders(primary: Headers, claims: string): Headers {
  const headers = new Headers(primary);
  for (const name of NOT_FOR_THE_SHADOW) headers.delete(name);
  headers.set(CLAIMS_HEADER, claims);
  headers.set(SHADOW_HEADER, "1");
  return headers;
}

const hex = (digest: ArrayBuffer) =>
  Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");

/** `promise`'s value, or `fallback` once `ms` have passed. */
function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

async function observe(
  status: number,
  headers: Headers,
  body: ReadableStream<Uint8Array> | null,
  names: readonly string[],
  startedAt: number,
  timeoutMs: number,
): Promise<Observed> {
  const bytes = await within(
    readUpTo(body, SHADOW_MAX_BODY_BYTES).catch(() => null),
    timeoutMs,
    null,
  );
  const bodyHash = bytes ? hex(await crypto.subtle.digest("SHA-256", bytes)) : null;
  return {
    status,
    headers: Object.fromEntries(names.map((name) => [name, headers.get(name)])),
    bodyHash,
    ms: Math.max(0, Math.round(performance.now() - startedAt)),
  };
}

/** Sends the copy; its answer observed, or null when it failed or ran out of time. */
async function callShadow(url: string, init: RequestInit, shadow: RouteShadow): Promise<Observed | null> {
  const controller = new AbortController();
  const startedAt = performance.now();
  const answer = fetch(url, { ...init, redirect: "manual", signal: controller.signal })
    .then((response) =>
      observe(
        response.status,
        response.headers,
        response.body,
        shadow.compareHeaders,
        startedAt,
        shadow.timeoutMs,
      ),
    )
    .catch(() => null);
  const observed = await within(answer, shadow.timeoutMs, null);
  if (!observed) controller.abort();
  return observed;
}

/** A sampled request once the primary's headers are in. */
export interface ShadowInput {
  shadow: RouteShadow;
  copy: ShadowCopy;
  method: string;
  pathAndQuery: string;
  /** The primary's origin request headers (credentials already removed). */
  headers: Headers;
  /** The primary's claims; the copy's are the same plus `shadow: true`. */
  claims: ClaimsInput;
  secret: string;
  /** The primary's answer: status, the origin's headers, its body, and when it was called (performance.now()). */
  status: number;
  responseHeaders: Headers;
  body: ReadableStream<Uint8Array> | null;
  primaryStartedAt: number;
}

/**
 * Tees the primary's body and sends the copy from waitUntil. Returns the body to give the client,
 * and the comparison (undefined when the copy could not be sent); it never rejects.
 */
export function shadowRequest(
  ctx: Pick<ExecutionContext, "waitUntil">,
  input: ShadowInput,
): { clientBody: ReadableStream<Uint8Array> | null; comparison: Promise<ShadowComparison | undefined> } {
  const { shadow } = input;
  let clientBody = input.body;
  let ours: ReadableStream<Uint8Array> | null = null;
  if (clientBody) [clientBody, ours] = clientBody.tee();
  const primary = observe(
    input.status,
    input.responseHeaders,
    ours,
    shadow.compareHeaders,
    input.primaryStartedAt,
    shadow.timeoutMs,
  );
  const comparison = (async () => {
    const requestBody = await within(input.copy.requestBody, shadow.timeoutMs, undefined);
    if (requestBody === undefined) return undefined;
    const claims = await signGatewayClaims({ ...input.claims, shadow: true }, input.secret);
    // As originUrl (workers/edge/origin.ts) joins a route's origin and the request's path.
    const url = shadow.origin.replace(/\/+$/, "") + input.pathAndQuery;
    const [primaryAnswer, shadowAnswer] = await Promise.all([
      primary,
      callShadow(
        url,
        { method: input.method, headers: shadowRequestHeaders(input.headers, claims), body: requestBody },
        shadow,
      ),
    ]);
    return compareAnswers(primaryAnswer, shadowAnswer, input.pathAndQuery);
  })().catch(() => undefined);
  ctx.waitUntil(comparison);
  return { clientBody, comparison };
}

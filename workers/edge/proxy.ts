/**
 * The proxy: everything that is not a gateway endpoint. In order: resolve the route, authenticate,
 * authorize, shed (fair shedding while the route's origin is degraded), admit (one tenant Durable
 * Object call), then stream to the origin and back, and meter
 * after the response.
 *
 * Every authenticated request reaches the request audit log: through its usage event when metered,
 * else through `requestAudit` (refusals after authentication, idempotent replays).
 *
 * Hot path budget: 0 KV reads when the key is warm, exactly 1 Durable Object call (plus 1 to record
 * the response of an Idempotency-Key request, and 1 to give back a prepaid request's credits when
 * it is not billable), 0 Postgres queries, 0 Stripe calls.
 */
import type { Context, Hono } from "hono";
import { MAX_RECORDED_BODY_BYTES, type RecordedResponse } from "../../durable-objects/idempotency";
import type { AppEnv } from "../env";
import { GatewayError } from "../errors";
import { log } from "../log";
import { sendUsageEvent } from "../metering/producer";
import { isBillable, type ShadowComparison } from "../metering/usage-event";
import { clientIp } from "../shared/client-ip";
import { complete, releaseCredits } from "../shared/tenant-client";
import { admit } from "./admit";
import { authenticate } from "./authenticate";
import { authorize } from "./authorize";
import { countBytes } from "./byte-counter";
import { CLAIMS_HEADER, signGatewayClaims } from "./claims";
import { fetchOrigin, forwardableHeaders, originRequestHeaders, originUrl } from "./origin";
import { readUpTo } from "./read-body";
import { requestAudit } from "./request-audit";
import { recordOriginTime, timed } from "./request-id";
import { requestShape } from "./request-shape";
import { resolveRoute } from "./resolve-route";
import { sampleShadow, shadowRequest } from "./shadow";
import { shed } from "./shed";

/** RFC 9745 `Deprecation` is a structured-field date (`@<unix seconds>`); RFC 8594 `Sunset` is an HTTP-date. */
function lifecycleHeaders(headers: Headers, route: { deprecation?: string; sunset?: string }): void {
  if (route.deprecation) headers.set("deprecation", `@${Math.floor(Date.parse(route.deprecation) / 1000)}`);
  if (route.sunset) headers.set("sunset", new Date(route.sunset).toUTCString());
}

/**
 * Queues the usage event of an admitted request once its bodies are done. Every admitted request
 * gets exactly one (reconciliation counts them against the tenant object's ledger); only an
 * origin's answer can be billable.
 */
function meter(
  c: Context<AppEnv>,
  status: number,
  answeredBy: "origin" | "gateway",
  bytesIn: Promise<number>,
  bytesOut: Promise<number>,
  shadow?: Promise<ShadowComparison | undefined>,
): void {
  const { key } = c.get("auth");
  const route = c.get("route");
  const billable =
    answeredBy === "origin" && isBillable({ status, routeBillable: route.billable, env: key.env });
  if (!billable) releaseHold(c);
  c.set("requestLog", "metered");
  // For the request audit log (the consumer appends each stored event to it): two header reads.
  const ip = clientIp(c) ?? undefined;
  const userAgent = c.req.header("user-agent");
  c.executionCtx.waitUntil(
    Promise.all([bytesIn, bytesOut]).then(async ([inBytes, outBytes]) => {
      const latencyMs = Math.round(performance.now() - c.get("startedAt"));
      // A sampled request's event waits for its shadow comparison (bounded: workers/edge/shadow.ts).
      const compared = await shadow;
      return sendUsageEvent(c.env, {
        id: c.get("requestId"),
        tenantId: key.tenantId,
        keyId: key.keyId,
        env: key.env,
        method: c.req.method,
        route: route.prefix,
        status,
        billable,
        units: route.cost,
        bytesIn: inBytes,
        bytesOut: outBytes,
        latencyMs,
        // The tenant object's clock, so the event lands in the same hour as its ledger entry.
        ts: new Date(c.get("admission").admittedAt).toISOString(),
        clientIp: ip,
        userAgent,
        ...(compared ? { shadow: compared } : {}),
      });
    }),
  );
}

/**
 * Gives back the prepaid credits a request held when it is not billable (origin 5xx, gateway error
 * after admission): the one extra tenant-object call, made only then. Idempotent in the object; a
 * release that never arrives leaves the hold to lapse into spent (durable-objects/credits.ts), which
 * reconciliation then shows against the usage rows.
 */
function releaseHold(c: Context<AppEnv>): void {
  const holdId = c.get("admission").creditHoldId;
  if (!holdId) return;
  c.executionCtx.waitUntil(
    releaseCredits(c.env, c.get("auth").tenant.id, holdId).catch((error) =>
      log.error("credit release failed", { request_id: c.get("requestId"), error: String(error) }),
    ),
  );
}

/**
 * Settles an Idempotency-Key lease: records a non-5xx response for replay, or releases the key
 * (5xx, gateway error, or a body too large to record) so a retry runs again.
 */
function settleIdempotency(c: Context<AppEnv>, recorded: Promise<RecordedResponse | null>): void {
  const { leaseToken, idempotencyKey } = c.get("admission");
  if (!leaseToken || !idempotencyKey) return;
  c.executionCtx.waitUntil(
    recorded
      .catch(() => null)
      .then((response) => complete(c.env, c.get("auth").tenant.id, idempotencyKey, leaseToken, response))
      .catch((error) =>
        log.error("idempotency settle failed", { request_id: c.get("requestId"), error: String(error) }),
      ),
  );
}

export function registerProxy(app: Hono<AppEnv>): void {
  // Server-Timing `auth` covers authenticate + authorize, `admit` the tenant object's decision.
  const chain = [
    requestShape(),
    resolveRoute(),
    timed("auth", authenticate()),
    requestAudit(),
    timed("auth", authorize()),
    shed(),
    timed("admit", admit()),
  ] as const;
  app.all("*", ...chain, async function proxy(c) {
    const { key, tenant } = c.get("auth");
    const route = c.get("route");
    const config = c.get("config");
    const maxBody = config.maxBodyBytes;
    const declared = c.req.header("content-length");
    // Admission already read the body of an Idempotency-Key request. Otherwise a body with a
    // declared length is passed through as is (the origin gets its Content-Length); only a
    // chunked body of unknown length is counted, and cut off at the limit.
    const buffered = c.get("requestBody");
    // GET and HEAD carry no body (requestShape refused any announced one), but the runtime may
    // still hand over an empty stream (`Content-Length: 0`), which fetch refuses for these methods.
    const bodiless = c.req.method === "GET" || c.req.method === "HEAD";
    const stream = buffered || bodiless ? null : c.req.raw.body;
    const counted = stream && declared === undefined ? countBytes(stream, maxBody) : undefined;
    const bytesIn = counted?.done ?? Promise.resolve(buffered?.byteLength ?? Number(declared ?? 0));

    const claimsInput = {
      sub: tenant.id,
      tenant: tenant.slug,
      key_id: key.keyId,
      plan: tenant.plan.name,
      role: key.role,
      env: key.env,
      request_id: c.get("requestId"),
    };
    const claims = await signGatewayClaims(claimsInput, c.env.CLAIMS_SECRET);
    const url = new URL(c.req.url);
    const target = originUrl(
      route,
      key.env,
      { live: config.originUrl, sandbox: config.sandboxOriginUrl },
      url.pathname + url.search,
    );
    const headers = originRequestHeaders(c.req.raw.headers, {
      "x-request-id": c.get("requestId"),
      [CLAIMS_HEADER]: claims,
    });

    const body = buffered ?? counted?.readable ?? stream;
    // Shadow traffic (workers/edge/shadow.ts): at most one Math.random() on a route with a shadow.
    const sampled = route.shadow
      ? sampleShadow(route.shadow, { method: c.req.method, env: key.env, body, contentLength: declared })
      : undefined;

    let upstream: Response;
    const originStart = performance.now();
    try {
      upstream = await fetchOrigin(
        target,
        { method: c.req.method, headers, body: sampled ? sampled.primaryBody : body },
        route.timeoutMs ?? config.originTimeoutMs,
        counted?.overLimit,
      );
      if (counted?.overLimit.aborted) {
        await upstream.body?.cancel();
        throw new Error("request body over the limit");
      }
    } catch (error) {
      recordOriginTime(c, originStart);
      settleIdempotency(c, Promise.resolve(null));
      const failure = counted?.overLimit.aborted
        ? new GatewayError("payload_too_large", `Request bodies are limited to ${maxBody} bytes.`)
        : error;
      meter(
        c,
        failure instanceof GatewayError ? failure.status : 500,
        "gateway",
        bytesIn,
        Promise.resolve(0),
      );
      throw failure;
    }

    recordOriginTime(c, originStart);
    const responseHeaders = forwardableHeaders(upstream.headers);
    lifecycleHeaders(responseHeaders, route);
    let clientBody = upstream.body;
    const shadow =
      route.shadow && sampled
        ? shadowRequest(c.executionCtx, {
            shadow: route.shadow,
            copy: sampled,
            method: c.req.method,
            pathAndQuery: url.pathname + url.search,
            headers,
            claims: claimsInput,
            secret: c.env.CLAIMS_SECRET,
            status: upstream.status,
            responseHeaders: upstream.headers,
            body: clientBody,
            primaryStartedAt: originStart,
          })
        : undefined;
    if (shadow) clientBody = shadow.clientBody;
    if (c.get("admission").leaseToken) {
      const status = upstream.status;
      const record = (body: ArrayBuffer | null) =>
        body ? { status, headers: [...responseHeaders], body } : null;
      if (status >= 500) {
        settleIdempotency(c, Promise.resolve(null));
      } else if (!clientBody) {
        settleIdempotency(c, Promise.resolve(record(new ArrayBuffer(0))));
      } else {
        const [toClient, toRecord] = clientBody.tee();
        clientBody = toClient;
        settleIdempotency(c, readUpTo(toRecord, MAX_RECORDED_BODY_BYTES).then(record));
      }
    }
    // A body of declared length passes through untouched (no JavaScript stream on the hot path);
    // only a body of unknown length is counted as it streams.
    const length = upstream.headers.get("content-length");
    if (!clientBody || (length !== null && /^\d+$/.test(length))) {
      const bytesOut = Promise.resolve(clientBody ? Number(length) : 0);
      c.set("bytes", { in: bytesIn, out: bytesOut });
      meter(c, upstream.status, "origin", bytesIn, bytesOut, shadow?.comparison);
      return new Response(clientBody, { status: upstream.status, headers: responseHeaders });
    }
    const counter = countBytes(clientBody);
    c.set("bytes", { in: bytesIn, out: counter.done });
    meter(c, upstream.status, "origin", bytesIn, counter.done, shadow?.comparison);
    return new Response(counter.readable, { status: upstream.status, headers: responseHeaders });
  });
}

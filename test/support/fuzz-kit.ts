/**
 * Fuzz-suite plumbing: send generated requests into the Worker's entry, check every response
 * against the gateway's contract (never a 5xx, problem+json with a closed-list `code`, our own
 * request id), check what reached the test origin, and count what was sent.
 *
 * Why `send` calls the entry's `fetch` directly: `exports.default.fetch` (what `gateway()` uses)
 * goes through vitest-pool-workers' entrypoint wrapper, which re-imports the main module through
 * the Vite module runner on every call: ~3 ms per request against ~0.3 ms direct (measured with
 * scripts/patch-vitest-pool-workers.mjs applied; without it the wrapper's cost also grows with
 * every call made in the file, ~190 ms per request after 600). `send` hands the same `Request` to
 * the same default export of workers/index.ts with the test's `env` and an ExecutionContext, which
 * is exactly what that wrapper does once it has the module; test/fuzz/entry-parity.test.ts checks
 * that both paths answer generated requests identically.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterAll, inject } from "vitest";
import { type GatewayClaims, verifyGatewayClaims } from "../../workers/edge/claims";
import { ERROR_CODES, PROBLEM_TYPE_BASE } from "../../workers/errors";
import worker from "../../workers/index";
import { BASE, gateway, type OriginCall, originCalls, uniq } from "./gateway";
import { originPathViolation } from "./path-oracle";

export { BASE };

declare module "vitest" {
  export interface ProvidedContext {
    /** Set only by `npm run fuzz:nightly` (scripts/fuzz-nightly.ts): the run's random seed. */
    fuzzSeed?: number;
  }
}

/**
 * The seed of one property: its fixed seed in `npm test`; under `npm run fuzz:nightly`, the run's
 * seed mixed with the fixed one (so every property still draws its own sequence). fast-check
 * prints the seed it used (and the shrink path) with any counterexample.
 */
export function fuzzSeed(fixed: number): number {
  const run = inject("fuzzSeed");
  return run === undefined ? fixed : (run ^ fixed) | 0;
}

/**
 * The test env with `LOG_LEVEL=error`: the gateway writes one log line per request, and ten thousand
 * of them through the pool's console only slow the run. One object, so the parsed config is cached.
 */
const QUIET_ENV = { ...env, LOG_LEVEL: "error" };

/** One request as generated: what a failure message needs to reproduce it. */
export interface FuzzRequest {
  method: string;
  path: string;
  headers: [string, string][];
  body?: BodyInit | null;
}

/** A response, read whole, plus what the checks derived from it. */
export interface Sent {
  request: FuzzRequest;
  status: number;
  headers: Headers;
  body: string;
  /** The test origin's echo (it stamps `x-origin: test` on every response it makes). */
  fromOrigin: boolean;
  /** The problem document, when the gateway answered with one. */
  problem?: Problem;
  /** With `settle: "deferred"`: settles once the request's `waitUntil` work has finished. */
  settling?: Promise<void>;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  request_id: string;
  errors?: { path: string; message: string }[];
}

export type Via = "entry" | "gateway";

function toHeaders(pairs: readonly [string, string][]): Headers {
  const headers = new Headers();
  for (const [name, value] of pairs) headers.append(name, value);
  return headers;
}

/** Builds the Request (throws as the runtime does for what it refuses: CR/LF/NUL, bad methods). */
export function toRequest(r: FuzzRequest): Request {
  return new Request(`${BASE}${r.path}`, {
    method: r.method,
    headers: toHeaders(r.headers),
    body: r.body ?? null,
    redirect: "manual",
  });
}

/**
 * How a request's `waitUntil` work (idempotency recording, Postgres pool close, the usage event) is
 * waited for: `true` before `send` returns; `"deferred"` not now, but through `Sent.settling` (the
 * campaign's `settled()`); absent, not at all.
 *
 * Why deferring matters: the usage event waits up to the producer's FLUSH_DELAY_MS (250 ms) for its
 * batch, so settling each proxied request in turn costs a quarter of a second per request; deferred,
 * the waits of a whole campaign overlap. Settle at once only what the next request depends on (the
 * recorded response an idempotent replay must find).
 */
export type Settle = boolean | "deferred";

/**
 * Sends one request into the Worker's entry and reads the response whole, waiting for its
 * `waitUntil` work as `settle` says. `via: "gateway"` sends it through `gateway()`
 * (exports.default.fetch) instead.
 */
export async function send(r: FuzzRequest, options: { settle?: Settle; via?: Via } = {}): Promise<Sent> {
  let response: Response;
  let body: string;
  let settling: Promise<void> | undefined;
  if (options.via === "gateway") {
    response = await gateway(r.path, {
      method: r.method,
      headers: toHeaders(r.headers),
      body: r.body ?? null,
    });
    body = await response.text();
  } else {
    const ctx = createExecutionContext();
    response = await worker.fetch(toRequest(r), QUIET_ENV as never, ctx);
    // Metering waits for the body to be read, so read it before waiting on waitUntil.
    body = await response.text();
    if (options.settle === true) await waitOnExecutionContext(ctx);
    else if (options.settle === "deferred") settling = waitOnExecutionContext(ctx);
  }
  const sent: Sent = {
    request: r,
    status: response.status,
    headers: response.headers,
    body,
    fromOrigin: response.headers.get("x-origin") === "test",
    settling,
  };
  if (response.headers.get("content-type") === "application/problem+json") {
    try {
      sent.problem = JSON.parse(body) as Problem;
    } catch {
      // checkResponse reports it.
    }
  }
  return sent;
}

/** A short, printable description of a request for assertion messages (long values elided). */
export function describeRequest(r: FuzzRequest): string {
  const clip = (s: string) => (s.length > 120 ? `${s.slice(0, 100)}…(${s.length} chars)` : s);
  const body =
    r.body === undefined || r.body === null
      ? ""
      : typeof r.body === "string"
        ? ` body=${JSON.stringify(clip(r.body))}`
        : " body=<binary>";
  return `${r.method} ${clip(r.path)} headers=${JSON.stringify(r.headers.map(([n, v]) => [n, clip(v)]))}${body}`;
}

export class FuzzFailure extends Error {
  override name = "FuzzFailure";
}

export function check(condition: unknown, message: string, sent?: Sent): asserts condition {
  if (condition) return;
  const context = sent
    ? `\n  request: ${describeRequest(sent.request)}\n  response: ${sent.status} ${sent.headers.get("content-type")} ${sent.body.slice(0, 400)}`
    : "";
  throw new FuzzFailure(`${message}${context}`);
}

const REQUEST_ID = /^req_[0-9a-z]{26}$/;
const PROBLEM_KEYS = ["type", "title", "status", "detail", "code", "request_id"];

/**
 * The contract every response satisfies, whatever was sent: our request id; never a 5xx (the fuzz
 * generators stay off the `/dead/` and `/v1/slow/` routes, so no origin is ever down or slow);
 * every error the gateway makes is a problem+json with a closed-list code; no HTML error page.
 */
export function checkResponse(sent: Sent): void {
  const id = sent.headers.get("x-request-id");
  check(id !== null && REQUEST_ID.test(id), `X-Request-ID is not a gateway id: ${id}`, sent);
  check(sent.status < 500, `gateway answered ${sent.status}`, sent);
  const contentType = sent.headers.get("content-type") ?? "";
  if (sent.fromOrigin) return;
  if (sent.status >= 400 || contentType.startsWith("application/problem+json")) {
    check(contentType === "application/problem+json", `error is not problem+json: ${contentType}`, sent);
    if (sent.request.method === "HEAD") return; // HEAD answers carry no body
    const p = sent.problem;
    check(p && typeof p === "object" && !Array.isArray(p), "problem body is not a JSON object", sent);
    for (const key of PROBLEM_KEYS) check(key in p, `problem lacks "${key}"`, sent);
    const extra = Object.keys(p).filter((k) => !PROBLEM_KEYS.includes(k) && k !== "errors");
    check(extra.length === 0, `problem has unexpected members ${extra.join(",")}`, sent);
    check(Object.hasOwn(ERROR_CODES, p.code), `code "${p.code}" is not in ERROR_CODES`, sent);
    const known = ERROR_CODES[p.code as keyof typeof ERROR_CODES];
    check(p.status === sent.status && known.status === sent.status, `status/code mismatch`, sent);
    check(p.title === known.title, `title is not the code's title`, sent);
    check(p.type === `${PROBLEM_TYPE_BASE}${p.code}`, `type is not the code's URI`, sent);
    check(p.request_id === id, `request_id ${p.request_id} != X-Request-ID ${id}`, sent);
    check(typeof p.detail === "string" && p.detail.length > 0, "detail is not a string", sent);
    check(!/\n\s+at |\.ts:\d+/.test(p.detail), "detail leaks a stack trace", sent);
    if (p.errors !== undefined) check(Array.isArray(p.errors), "errors is not an array", sent);
    if (sent.status === 401) {
      check(/^Bearer realm=/.test(sent.headers.get("www-authenticate") ?? ""), "401 without challenge", sent);
    }
    if (sent.status === 429) check(sent.headers.has("retry-after"), "429 without Retry-After", sent);
  } else {
    check(!contentType.includes("text/html") || sent.status < 300, "HTML error page", sent);
  }
}

/** A gateway-made error with one of `codes` (and so never the origin's response). */
export function checkRefused(sent: Sent, ...codes: string[]): void {
  checkResponse(sent);
  check(!sent.fromOrigin, "reached the origin", sent);
  check(sent.status >= 400, "not refused", sent);
  if (sent.request.method === "HEAD") return;
  check(sent.problem !== undefined, "not refused with a problem", sent);
  check(
    codes.includes(sent.problem.code),
    `code ${sent.problem.code} is not one of ${codes.join("|")}`,
    sent,
  );
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f]/;

/**
 * A request whose key must not authenticate: 401 `unauthorized` (or 400 `invalid_request`, the
 * code for a malformed Authorization header once the door work lands), or 400 `bad_request` when a
 * header value carries a control character (workers/edge/request-shape.ts refuses those before the
 * key is looked at).
 */
export function checkKeyRefused(sent: Sent): void {
  if (hasControlValue(sent.request)) checkRefused(sent, "bad_request");
  else checkRefused(sent, "unauthorized", "invalid_request");
}

/** Whether a header value carries a control character the runtime let through (refused with 400 first). */
export function hasControlValue(request: FuzzRequest): boolean {
  return request.headers.some(([, value]) => CONTROL.test(value));
}

/** What the test origin echoes back: the request as it received it. */
export interface Echo {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** The key a proxied request was sent with. */
export interface Caller {
  tenantId: string;
  keyId: string;
  env: "live" | "test";
}

/** The path and query the origin must receive: the URL's normal form, under /sandbox for test keys. */
export function expectedOriginPath(path: string, env: "live" | "test"): string {
  const url = new URL(`${BASE}${path}`);
  return `${env === "test" ? "/sandbox" : ""}${url.pathname}${url.search}`;
}

/**
 * A proxied response: the origin saw the request's own path, none of the client's credentials, our
 * request id, and claims that verify and name the caller.
 */
export async function checkEcho(sent: Sent, caller: Caller): Promise<Echo | undefined> {
  checkResponse(sent);
  check(sent.fromOrigin, "did not reach the origin", sent);
  if (sent.request.method === "HEAD") return undefined;
  const echo = JSON.parse(sent.body) as Echo;
  check(echo.path === expectedOriginPath(sent.request.path, caller.env), `origin saw ${echo.path}`, sent);
  for (const secret of ["authorization", "x-api-key", "proxy-authorization"]) {
    check(echo.headers[secret] === undefined, `origin received ${secret}`, sent);
  }
  const id = sent.headers.get("x-request-id");
  check(echo.headers["x-request-id"] === id, `origin got X-Request-ID ${echo.headers["x-request-id"]}`, sent);
  let claims: GatewayClaims;
  try {
    claims = await verifyGatewayClaims(echo.headers["x-gateway-claims"] ?? null, env.CLAIMS_SECRET);
  } catch (error) {
    throw new FuzzFailure(
      `claims at the origin do not verify (${String(error)}): ${describeRequest(sent.request)}`,
    );
  }
  check(
    claims.sub === caller.tenantId &&
      claims.key_id === caller.keyId &&
      claims.env === caller.env &&
      claims.request_id === id,
    `claims name someone else: ${JSON.stringify(claims)}`,
    sent,
  );
  return echo;
}

// ---- What the origin may see -------------------------------------------------------------------------

/** Origin paths carry `/sandbox` in front for test keys (SANDBOX_ORIGIN_URL = origin + /sandbox). */
export function originPathname(call: OriginCall): string {
  const pathname = call.path.split("?")[0] ?? "";
  return pathname.startsWith("/sandbox/") ? pathname.slice("/sandbox".length) : pathname;
}

/**
 * Everything the origin recorded for `marker`: only paths that, decoded once more and resolved the
 * way a lenient origin would, stay under their route and never name `/admin` or `/gateway`
 * (test/support/path-oracle.ts); never the client's credentials; always our claims. Returns the
 * calls for count checks.
 */
export async function checkOriginCalls(marker: string): Promise<OriginCall[]> {
  const calls = await originCalls(marker);
  for (const call of calls) {
    const pathname = originPathname(call);
    const where = `origin call ${call.method} ${call.path.slice(0, 200)}`;
    const violation = originPathViolation(pathname);
    check(violation === undefined, `${where}: ${violation}`);
    for (const secret of ["authorization", "x-api-key", "proxy-authorization"]) {
      check(call.headers[secret] === undefined, `${where}: forwarded ${secret}`);
    }
    check(call.headers["x-gateway-claims"] !== undefined, `${where}: no claims`);
  }
  return calls;
}

// ---- Counting ---------------------------------------------------------------------------------------

/**
 * One property's campaign: a marker unique to it (put in every generated path or query, so the
 * origin's record of it can be checked once at the end) and a count of the requests it sent.
 */
export class Campaign {
  readonly marker = `fz${uniq()}`;
  sent = 0;
  /** Responses the origin made for this campaign (idempotent replays excluded). */
  reachedOrigin = 0;

  constructor(
    readonly name: string,
    ledger: Ledger,
  ) {
    ledger.campaigns.push(this);
  }

  /** `waitUntil` work of requests sent with `settle: "deferred"`, not yet waited for. */
  private readonly settling: Promise<void>[] = [];

  async send(r: FuzzRequest, options: { settle?: Settle; via?: Via } = {}): Promise<Sent> {
    this.sent++;
    const sent = await send(r, options);
    if (sent.settling) this.settling.push(sent.settling);
    if (sent.fromOrigin && sent.headers.get("idempotent-replayed") !== "true") this.reachedOrigin++;
    return sent;
  }

  /** Waits for the `waitUntil` work of every request this campaign sent with `settle: "deferred"`. */
  async settled(): Promise<void> {
    await Promise.all(this.settling.splice(0));
  }

  /** Counts requests sent some other way (e.g. through `gateway()` for comparison). */
  count(n = 1): void {
    this.sent += n;
  }
}

/**
 * Per-file tally, printed after the file: `fuzz: N requests in <file>`, with the running total of
 * this vitest run. Files run in separate isolates, so the running total is kept where they can all
 * see it: the test origin records a `/fuzz-tally/<file>/<n>` call per file (no marker matches it).
 */
export class Ledger {
  readonly campaigns: Campaign[] = [];

  constructor(readonly file: string) {
    afterAll(async () => {
      const total = this.campaigns.reduce((n, c) => n + c.sent, 0);
      await fetch(`${env.ORIGIN_URL}/fuzz-tally/${encodeURIComponent(file)}/${total}`);
      const perFile = new Map<string, number>();
      for (const call of await originCalls("/fuzz-tally/")) {
        const [, , name, n] = call.path.split("/");
        if (name !== undefined) perFile.set(name, Number(n));
      }
      const runTotal = [...perFile.values()].reduce((a, b) => a + b, 0);
      const lines = this.campaigns.map(
        (c) => `  ${c.name}: ${c.sent} (${c.reachedOrigin} reached the origin)`,
      );
      console.log(
        `fuzz: ${total} requests in ${file}\n${lines.join("\n")}\n` +
          `fuzz: ${runTotal} requests in this run so far (${perFile.size} fuzz files)`,
      );
    });
  }

  campaign(name: string): Campaign {
    return new Campaign(name, this);
  }
}

/** A tenant with room for every request a fuzz file sends: no quotas, a bucket that never runs dry. */
export const FUZZ_PLAN = { burstCapacity: 1_000_000, refillTokens: 1_000_000, refillPeriodSeconds: 1 };

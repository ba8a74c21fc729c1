/**
 * A local Stripe stand-in: a Node HTTP server speaking Stripe's v1 wire protocol for just the
 * endpoints the gateway uses (customers, billing meters, meter events, meter event summaries,
 * products, prices, subscriptions and the proration invoice items they make, invoices, events,
 * Checkout Sessions), so the official `stripe` package — inside workerd, pointed here with
 * `host`/`port`/`protocol` — runs the same code path locally and in tests as against api.stripe.com.
 *
 * Its parts in dev/stripe/: the objects (objects.ts) and wire kit (wire.ts); the clock it runs on
 * (clock.ts); the billing cycle — invoices at period end, payments, retries (invoices.ts, priced by
 * pricing.ts); Events (events.ts); Checkout Sessions (checkout.ts); and what it serves outside /v1 —
 * the `/_standin/` control endpoints and the hosted pages (control.ts, pages.ts).
 *
 * Wire behaviours and where they come from (docs.stripe.com unless noted):
 * - Auth: `Authorization: Bearer sk_test_…|sk_live_…` (Basic with the key as user also works, as
 *   with `curl -u`). Otherwise 401 `invalid_request_error` "Invalid API Key provided: sk_test_***1234"
 *   or "You did not provide an API key…" (api/authentication; observed bodies in public code).
 * - Requests are form encoded with bracket notation (`payload[value]=3`); GET params are in the query
 *   string. Unknown params → 400 `parameter_unknown`; missing → 400 `parameter_missing` (api/errors,
 *   error-codes).
 * - Errors: `{ error: { type, message, code?, param?, doc_url?, request_log_url } }`; types are
 *   `api_error | card_error | idempotency_error | invalid_request_error` (api/errors). Every answer
 *   carries `Request-Id: req_…`, `Content-Type: application/json`, `Stripe-Version`.
 * - Idempotency (api/idempotent_requests): POSTs only; the status and body of the first request
 *   with a key are saved once the endpoint begins executing and replayed for the same key with
 *   `Idempotent-Replayed: true` and `Original-Request: req_…`; different parameters (or endpoint)
 *   → 400 `idempotency_error` "Keys for idempotent requests can only be used with the same
 *   parameters they were first used with. Try using a key other than '<key>' if you meant to
 *   execute a different request."; keys are pruned after 24 h; keys are ≤ 255 characters.
 *   Requests that fail parameter validation are not saved ("no idempotent result is saved because
 *   no API endpoint began execution"): here, every 4xx is such a validation failure, so only
 *   successes are saved and replayed.
 * - Meter events (api/billing/meter-event/create): `identifier` unique for 24 h (the docs say "a
 *   rolling period of at least 24 hours"; enforced here for exactly 24 h). A duplicate is REFUSED,
 *   not silently accepted: 400 `invalid_request_error`, no `code`, message "An event already exists
 *   with identifier <id>.", header `Stripe-Should-Retry: false` — as observed against real Stripe
 *   (langfuse/langfuse PR #16292; other public integrations match on the same message). Timestamps
 *   must be "within the past 35 calendar days or up to 5 minutes in the future" (a 35 × 24 h window
 *   here).
 * - Meter event summaries (api/billing/meter-event-summary/list): `start_time` inclusive, `end_time`
 *   exclusive, both aligned to minutes; with `value_grouping_window=hour` aligned to hours, with `day`
 *   to 00:00 UTC. Without a window, one summary for the whole range. Listed newest window first and
 *   windows without events are omitted (both inferred from the docs' example response). Stripe
 *   aggregates asynchronously (eventually consistent); here an accepted event counts at once.
 * - Lists: `{ object: "list", data, has_more, url }`, newest first, `limit` 1–100 (default 10),
 *   `starting_after` / `ending_before` cursors (api/pagination).
 * - Prices (api/prices): `lookup_key` unique per mode (taken → 400 unless `transfer_lookup_key`),
 *   `prices.list({ lookup_keys })` (at most 10), graduated/volume tiers (`up_to: "inf"` last; answered
 *   as `up_to: null`, and only when expanded: `tiers` is an includable field), metered recurring
 *   prices need `recurring[meter]` (API versions since 2025-03-31). Decimal twins (`*_decimal`) are strings.
 * - Subscriptions (api/subscriptions): items of one currency and interval; metered items carry no
 *   `quantity`; the billing period lives on the items (`current_period_start/end`, API versions
 *   since 2025-03-31). An update's `proration_behavior=create_prorations` (default) leaves pending
 *   `invoiceitem`s with `proration: true`: a credit for the unused time of a licensed price that goes
 *   and a charge for the remaining time of the one that comes; `none` leaves none. `list` omits
 *   canceled subscriptions unless `status=canceled|all`. A customer bills in one currency (its first
 *   subscription sets `customer.currency`; another is refused with "You cannot combine currencies on
 *   a single customer…").
 *
 * Every call the gateway makes is checked against Stripe's published OpenAPI spec and example objects
 * (request and answer) by `npm run test:contract` (test/contract/stripe-contract.ts): change an
 * answer's shape here and that check says where it departs from Stripe's.
 *
 * Choices where the docs are silent are marked "Choice:" below. Test and live keys see separate
 * data (as two Stripe modes do). Data lives in memory, or in `stateFile` when given. Fault injection and inspection live under `/__control/` (no auth):
 * `fail`, `latency`, `reset-faults` (clears both, and puts the clock and the payment retry rules
 * back; tests call it before each test), `reset` (everything), `events` (accepted meter events).
 */
import { randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";
import { checkout } from "./stripe/checkout";
import { monthsAfter, standInClock } from "./stripe/clock";
import { type LocalAnswer, type LocalDeps, localAnswer } from "./stripe/control";
import { emit, listEvents, momentOf, retrieveEvent } from "./stripe/events";
import { DEFAULT_RETRY_RULES, invoicing, type RetryRules } from "./stripe/invoices";
import {
  type AcceptedMeterEvent,
  Account,
  type Customer,
  FORMULAS,
  type Formula,
  type InvoiceItem,
  type Meter,
  type Price,
  type PriceTier,
  type Product,
  planView,
  priceOut,
  type Subscription,
  type SubscriptionItem,
  subscriptionOut,
} from "./stripe/objects";
import { aggregate } from "./stripe/pricing";
import {
  allowOnly,
  type Call,
  DEFAULT_STRIPE_VERSION,
  expansions,
  hash,
  integer,
  invalid,
  list,
  metadataOf,
  missing,
  newId,
  nonNegative,
  noSuch,
  optString,
  type Param,
  type Params,
  paginate,
  type Reply,
  randomChars,
  reqString,
  StripeFault,
} from "./stripe/wire";

export type { AcceptedMeterEvent } from "./stripe/objects";

export interface StripeStandInOptions {
  /** Default 0: an OS-assigned port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** The clock, in ms since the epoch (default `Date.now`); lets a Node caller test the 24 h windows. */
  now?: () => number;
  /**
   * A JSON file to keep the data in across restarts (loaded at start, rewritten shortly after every
   * change and on stop), so that `npm start` keeps the customer ids Postgres remembers. Default: memory only.
   */
  stateFile?: string;
  /** Payment retries (default: 3 failed charges, 3 days apart, then the subscription is canceled). */
  retries?: Partial<RetryRules>;
}

export interface StripeStandIn {
  /** `http://127.0.0.1:<port>` */
  url: string;
  host: string;
  port: number;
  stop(): Promise<void>;
  /** The next `count` API calls answer `status` with a Stripe error body, without being applied. */
  failNext(count: number, status: 500 | 429 | 503): void;
  /** Delays every API answer by `ms` (after the request has been applied). */
  setLatency(ms: number): void;
  /** Forgets everything: data, idempotency keys, identifiers, faults, latency. */
  reset(): void;
  /**
   * Forgets only what a test injected (pending faults, latency) and keeps the data, so a process
   * shared by many tests (whose isolates cache meter ids) can be cleaned between tests.
   */
  resetFaults(): void;
}

const DAY = 86_400;
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const IDENTIFIER_TTL_MS = 24 * 3_600_000;
const MAX_PAST_S = 35 * DAY;
const MAX_FUTURE_S = 5 * 60;
const MAX_BODY_BYTES = 1 << 20;

export async function startStripeStandIn(options: StripeStandInOptions = {}): Promise<StripeStandIn> {
  const host = options.host ?? "127.0.0.1";
  const clock = standInClock(options.now ?? Date.now);
  const now = clock.nowMs;
  const defaultRules: RetryRules = { ...DEFAULT_RETRY_RULES, ...options.retries };
  let rules = defaultRules;
  let origin = "";
  const billing = invoicing(
    () => rules,
    () => origin,
  );
  const sessions = checkout(() => origin);
  let test = new Account();
  let live = new Account();
  const stateFile = options.stateFile;
  if (stateFile) {
    try {
      const saved = JSON.parse(readFileSync(stateFile, "utf8")) as {
        test?: ReturnType<Account["toJSON"]>;
        live?: ReturnType<Account["toJSON"]>;
      };
      test = Account.fromJSON(saved.test);
      live = Account.fromJSON(saved.live);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        console.warn(`[stripe-standin] starting empty: could not read ${stateFile}: ${String(err)}`);
      }
    }
  }
  let saveTimer: NodeJS.Timeout | undefined;
  const saveNow = () => {
    clearTimeout(saveTimer);
    saveTimer = undefined;
    if (!stateFile) return;
    try {
      mkdirSync(dirname(stateFile), { recursive: true });
      writeFileSync(`${stateFile}.tmp`, JSON.stringify({ test, live }));
      renameSync(`${stateFile}.tmp`, stateFile);
    } catch (err) {
      console.error(`[stripe-standin] could not save ${stateFile}: ${String(err)}`);
    }
  };
  const save = () => {
    if (stateFile && !saveTimer) saveTimer = setTimeout(saveNow, 200);
  };
  let faults: Array<{ remaining: number; status: number }> = [];
  let latencyMs = 0;

  const failNext = (count: number, status: number) => {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`failNext: bad count ${count}`);
    if (status !== 429 && !(status >= 500 && status <= 599)) {
      throw new RangeError(`failNext: status must be 429 or 5xx, not ${status}`);
    }
    if (count > 0) faults.push({ remaining: count, status });
  };
  const setLatency = (ms: number) => {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`setLatency: bad ms ${ms}`);
    latencyMs = ms;
  };
  const resetFaults = () => {
    faults = [];
    latencyMs = 0;
    clock.reset();
    rules = defaultRules;
  };
  const modes = () => [
    { account: test, livemode: false },
    { account: live, livemode: true },
  ];
  const local: LocalDeps = {
    accounts: modes,
    clock,
    runDue: () => {
      for (const { account, livemode } of modes())
        billing.runDue(account, livemode, Math.floor(now() / 1000));
    },
    rules: {
      get: () => rules,
      set: (next) => {
        rules = next;
      },
    },
  };
  const reset = () => {
    test = new Account();
    live = new Account();
    resetFaults();
    save();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // Never crash: anything unexpected is Stripe's generic 500.
      console.error("[stripe-standin] unexpected error:", err);
      if (!res.headersSent && !res.destroyed) {
        const requestId = newRequestId();
        send(res, 500, errorBody(new StripeFault(500, "api_error", "An unknown error occurred"), requestId), {
          "Request-Id": requestId,
        });
      } else res.destroy();
    });
  });
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://stand-in");
    let raw: string;
    try {
      raw = await readBody(req);
    } catch (err) {
      const requestId = newRequestId();
      const fault = err instanceof StripeFault ? err : invalid("The request body could not be read.");
      send(res, fault.status, errorBody(fault, requestId), { "Request-Id": requestId });
      return;
    }
    if (url.pathname.startsWith("/__control/")) return control(req, res, url, raw);
    const answer = localAnswer(local, req.method ?? "GET", url.pathname, raw);
    if (answer) {
      if (req.method === "POST" && answer.status < 400) save();
      sendLocal(res, answer);
      return;
    }

    const requestId = newRequestId();
    const method = req.method ?? "GET";
    const headers: Record<string, string> = {
      "Request-Id": requestId,
      "Stripe-Version": header(req, "stripe-version") ?? DEFAULT_STRIPE_VERSION,
    };
    let reply: Reply;
    const fault = faults[0];
    if (fault) {
      fault.remaining -= 1;
      if (fault.remaining <= 0) faults.shift();
      reply = injected(fault.status, requestId);
    } else {
      try {
        reply = api(req, method, url, raw, requestId);
        if (method === "POST" && reply.status < 300) save();
      } catch (err) {
        if (!(err instanceof StripeFault)) throw err;
        reply = { status: err.status, body: errorBody(err, requestId), headers: err.extra.headers };
      }
    }
    if (latencyMs > 0) await sleep(latencyMs);
    if (res.destroyed) return;
    send(res, reply.status, reply.body, { ...headers, ...reply.headers });
  }

  /** Auth, parsing, idempotency, then the endpoint. */
  function api(req: IncomingMessage, method: string, url: URL, raw: string, requestId: string): Reply {
    const key = apiKey(req);
    const livemode = key.startsWith("sk_live_");
    const account = livemode ? live : test;
    const nowMs = now();
    billing.runDue(account, livemode, Math.floor(nowMs / 1000));
    const route = findRoute(method, url.pathname);
    if (!route) {
      throw invalid(
        `Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        { status: 404 },
      );
    }

    const params =
      method === "GET" || method === "DELETE" ? parseForm(url.search.slice(1)) : parseBody(req, raw);
    // Stripe ignores Idempotency-Key on GET and DELETE ("has no effect").
    const idempotencyKey = method === "POST" ? header(req, "idempotency-key") : undefined;
    const call: Call = {
      method,
      path: url.pathname,
      params,
      account,
      livemode,
      requestId,
      idempotencyKey,
      nowS: Math.floor(nowMs / 1000),
    };
    if (idempotencyKey === undefined) return route.handler(call, route.id);

    if (idempotencyKey.length > 255) {
      throw invalid("Idempotency-Key must be no longer than 255 characters.", { param: "Idempotency-Key" });
    }
    for (const [k, saved] of account.idempotency) if (saved.expiresAt <= nowMs) account.idempotency.delete(k);
    const fingerprint = canonical(params);
    const saved = account.idempotency.get(idempotencyKey);
    const echo = { "Idempotency-Key": idempotencyKey };
    if (saved) {
      if (saved.method !== method || saved.path !== url.pathname) {
        throw new StripeFault(
          400,
          "idempotency_error",
          `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${saved.method} ${saved.path}' vs '${method} ${url.pathname}'). Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
          { headers: echo },
        );
      }
      if (saved.params !== fingerprint) {
        throw new StripeFault(
          400,
          "idempotency_error",
          `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
          { headers: echo },
        );
      }
      return {
        status: saved.status,
        body: saved.body,
        headers: { ...echo, "Idempotent-Replayed": "true", "Original-Request": saved.requestId },
      };
    }
    let reply: Reply;
    try {
      reply = route.handler(call, route.id);
    } catch (err) {
      if (err instanceof StripeFault) err.extra.headers = { ...echo, ...err.extra.headers };
      throw err;
    }
    account.idempotency.set(idempotencyKey, {
      method,
      path: url.pathname,
      params: fingerprint,
      status: reply.status,
      body: reply.body,
      requestId,
      expiresAt: nowMs + IDEMPOTENCY_TTL_MS,
    });
    return { ...reply, headers: { ...echo, ...reply.headers } };
  }

  function control(req: IncomingMessage, res: ServerResponse, url: URL, raw: string): void {
    let status = 200;
    let body: unknown;
    try {
      body = controlAnswer(req.method ?? "GET", url, raw);
      if (body === null) {
        status = 404;
        body = { error: `unknown control endpoint ${req.method} ${url.pathname}` };
      }
    } catch (err) {
      status = 400;
      body = { error: err instanceof Error ? err.message : String(err) };
    }
    send(res, status, body);
  }

  /** The answer of a control endpoint; null when there is none. */
  function controlAnswer(method: string, url: URL, raw: string): unknown {
    const path = url.pathname;
    const json = (): Record<string, unknown> => {
      const parsed: unknown = raw.trim() ? JSON.parse(raw) : {};
      if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
        throw new Error("the body must be a JSON object");
      }
      return parsed as Record<string, unknown>;
    };
    if (method === "POST" && path === "/__control/fail") {
      const body = json();
      failNext(Number(body.count), Number(body.status));
      return { ok: true, pending: faults.map((f) => ({ ...f })) };
    }
    if (method === "POST" && path === "/__control/latency") {
      setLatency(Number(json().ms));
      return { ok: true, ms: latencyMs };
    }
    if (method === "POST" && path === "/__control/reset") {
      reset();
      return { ok: true };
    }
    if (method === "POST" && path === "/__control/reset-faults") {
      resetFaults();
      return { ok: true, pending: [], ms: 0 };
    }
    if (method === "GET" && path === "/__control/events") {
      const customer = url.searchParams.get("customer");
      const eventName = url.searchParams.get("event_name");
      const data = [...test.events, ...live.events].filter(
        (e) => (!customer || e.customer === customer) && (!eventName || e.event_name === eventName),
      );
      return { data };
    }
    return null;
  }

  function injected(status: number, requestId: string): Reply {
    if (status === 429) {
      // Real Stripe's rate-limit body: type invalid_request_error with code rate_limit (there is no
      // `rate_limit_error` type in api/errors). No Stripe-Should-Retry: the package then does not retry.
      const fault = invalid(
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
        { code: "rate_limit", status: 429 },
      );
      return { status, body: errorBody(fault, requestId) };
    }
    // Choice: no Stripe-Should-Retry on injected 5xx (nothing was applied or saved, so a retry is
    // safe); the package retries 5xx by default.
    const fault = new StripeFault(
      status,
      "api_error",
      "An unknown error occurred (injected by the stand-in).",
    );
    return { status, body: errorBody(fault, requestId) };
  }

  // ---- Endpoints ----------------------------------------------------------------------------------

  interface Route {
    method: string;
    pattern: RegExp;
    handler: (call: Call, id: string) => Reply;
  }
  const routes: Route[] = [
    { method: "POST", pattern: /^\/v1\/customers$/, handler: createCustomer },
    { method: "GET", pattern: /^\/v1\/customers$/, handler: listCustomers },
    { method: "GET", pattern: /^\/v1\/customers\/([^/]+)$/, handler: retrieveCustomer },
    { method: "POST", pattern: /^\/v1\/products$/, handler: createProduct },
    { method: "GET", pattern: /^\/v1\/products\/([^/]+)$/, handler: retrieveProduct },
    { method: "POST", pattern: /^\/v1\/prices$/, handler: createPrice },
    { method: "GET", pattern: /^\/v1\/prices$/, handler: listPrices },
    { method: "GET", pattern: /^\/v1\/prices\/([^/]+)$/, handler: retrievePrice },
    { method: "POST", pattern: /^\/v1\/subscriptions$/, handler: createSubscription },
    { method: "GET", pattern: /^\/v1\/subscriptions$/, handler: listSubscriptions },
    { method: "GET", pattern: /^\/v1\/subscriptions\/([^/]+)$/, handler: retrieveSubscription },
    { method: "POST", pattern: /^\/v1\/subscriptions\/([^/]+)$/, handler: updateSubscription },
    { method: "DELETE", pattern: /^\/v1\/subscriptions\/([^/]+)$/, handler: cancelSubscription },
    { method: "GET", pattern: /^\/v1\/invoiceitems$/, handler: listInvoiceItems },
    { method: "POST", pattern: /^\/v1\/billing\/meters$/, handler: createMeter },
    { method: "GET", pattern: /^\/v1\/billing\/meters$/, handler: listMeters },
    { method: "GET", pattern: /^\/v1\/billing\/meters\/([^/]+)$/, handler: retrieveMeter },
    { method: "GET", pattern: /^\/v1\/billing\/meters\/([^/]+)\/event_summaries$/, handler: listSummaries },
    { method: "POST", pattern: /^\/v1\/billing\/meter_events$/, handler: createMeterEvent },
    { method: "GET", pattern: /^\/v1\/events$/, handler: listEvents },
    { method: "GET", pattern: /^\/v1\/events\/([^/]+)$/, handler: retrieveEvent },
    { method: "GET", pattern: /^\/v1\/invoices$/, handler: billing.listInvoices },
    { method: "GET", pattern: /^\/v1\/invoices\/([^/]+)$/, handler: billing.retrieveInvoice },
    { method: "POST", pattern: /^\/v1\/invoices\/([^/]+)\/pay$/, handler: billing.payInvoice },
    { method: "POST", pattern: /^\/v1\/checkout\/sessions$/, handler: sessions.createSession },
    { method: "GET", pattern: /^\/v1\/checkout\/sessions\/([^/]+)$/, handler: sessions.retrieveSession },
    {
      method: "POST",
      pattern: /^\/v1\/checkout\/sessions\/([^/]+)\/expire$/,
      handler: sessions.expireSession,
    },
  ];
  function findRoute(method: string, path: string): { handler: Route["handler"]; id: string } | null {
    for (const route of routes) {
      const match = route.pattern.exec(path);
      if (match && route.method === method) return { handler: route.handler, id: decode(match[1] ?? "") };
    }
    return null;
  }

  function createCustomer(call: Call): Reply {
    const p = call.params;
    allowOnly(p, ["name", "email", "description", "phone", "metadata", "expand"]);
    const email = optString(p, "email");
    // Choice: a light syntax check standing in for Stripe's "Invalid email address: …".
    if (email && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) {
      throw invalid(`Invalid email address: ${email}`, { code: "email_invalid", param: "email" });
    }
    const customer: Customer = {
      id: newId("cus", 14),
      object: "customer",
      address: null,
      balance: 0,
      created: call.nowS,
      currency: null,
      default_source: null,
      delinquent: false,
      description: optString(p, "description") || null,
      discount: null,
      email: email || null,
      invoice_prefix: randomChars(8).toUpperCase(),
      invoice_settings: {
        custom_fields: null,
        default_payment_method: null,
        footer: null,
        rendering_options: null,
      },
      livemode: call.livemode,
      metadata: metadataOf(p),
      name: optString(p, "name") || null,
      next_invoice_sequence: 1,
      phone: optString(p, "phone") || null,
      preferred_locales: [],
      shipping: null,
      tax_exempt: "none",
      test_clock: null,
    };
    call.account.customers.set(customer.id, customer);
    emit(momentOf(call), "customer.created", customer);
    return { status: 200, body: customer };
  }

  function listCustomers(call: Call): Reply {
    const p = call.params;
    allowOnly(p, ["email", "limit", "starting_after", "ending_before", "created", "expand"]);
    const email = optString(p, "email");
    const customers = [...call.account.customers.values()]
      .filter((c) => email === undefined || c.email === email)
      .reverse();
    return { status: 200, body: paginate(customers, p, "/v1/customers") };
  }

  // Products and prices (api/products, api/prices). Choice: products are always `type: service`.

  function createProduct(call: Call): Reply {
    const p = call.params;
    allowOnly(p, ["id", "name", "active", "description", "metadata", "expand"]);
    const name = reqString(p, "name");
    const id = optString(p, "id") || newId("prod", 14);
    if (call.account.products.has(id)) {
      // Choice: the message of a custom id that is taken is not documented.
      throw invalid(`Product already exists.`, { code: "resource_already_exists", param: "id" });
    }
    const product: Product = {
      id,
      object: "product",
      active: optString(p, "active") !== "false",
      created: call.nowS,
      default_price: null,
      description: optString(p, "description") || null,
      images: [],
      livemode: call.livemode,
      marketing_features: [],
      metadata: metadataOf(p),
      name,
      package_dimensions: null,
      shippable: null,
      statement_descriptor: null,
      tax_code: null,
      tax_details: null,
      type: "service",
      unit_label: null,
      updated: call.nowS,
      url: null,
    };
    call.account.products.set(id, product);
    return { status: 200, body: product };
  }

  function retrieveProduct(call: Call, id: string): Reply {
    allowOnly(call.params, ["expand"]);
    const product = call.account.products.get(id);
    if (!product) throw noSuch("product", id, "id", 404);
    return { status: 200, body: product };
  }

  function createPrice(call: Call): Reply {
    const p = call.params;
    allowOnly(p, [
      "currency",
      "product",
      "unit_amount",
      "billing_scheme",
      "tiers",
      "tiers_mode",
      "recurring",
      "lookup_key",
      "transfer_lookup_key",
      "nickname",
      "metadata",
      "active",
      "expand",
    ]);
    const currency = reqString(p, "currency").toLowerCase();
    if (!/^[a-z]{3}$/.test(currency)) throw invalid(`Invalid currency: ${currency}`, { param: "currency" });
    const productId = reqString(p, "product");
    if (!call.account.products.has(productId)) throw noSuch("product", productId, "product", 400);
    const scheme = optString(p, "billing_scheme") ?? "per_unit";
    if (scheme !== "per_unit" && scheme !== "tiered")
      throw invalid("Invalid billing_scheme: must be one of per_unit or tiered", { param: "billing_scheme" });
    const unitAmountRaw = optString(p, "unit_amount");
    const unitAmount = unitAmountRaw === undefined ? null : nonNegative(unitAmountRaw, "unit_amount");
    let tiers: PriceTier[] | undefined;
    let tiersMode: Price["tiers_mode"] = null;
    if (scheme === "tiered") {
      if (unitAmount !== null)
        throw invalid("unit_amount cannot be set for tiered prices.", { param: "unit_amount" });
      const mode = reqString(p, "tiers_mode");
      if (mode !== "graduated" && mode !== "volume")
        throw invalid("Invalid tiers_mode: must be one of graduated or volume", { param: "tiers_mode" });
      tiersMode = mode;
      tiers = tiersOf(p);
    } else {
      if (p.tiers !== undefined || p.tiers_mode !== undefined)
        throw invalid("tiers can only be set when billing_scheme is tiered.", { param: "tiers" });
      if (unitAmount === null) throw missing("unit_amount");
    }
    let recurring: Price["recurring"] = null;
    const rec = hash(p, "recurring");
    if (rec) {
      allowOnly(rec, ["interval", "interval_count", "usage_type", "meter"], "recurring");
      const interval = reqString(rec, "interval", "recurring[interval]");
      if (!["day", "week", "month", "year"].includes(interval))
        throw invalid("Invalid recurring[interval]: must be one of day, week, month, or year", {
          param: "recurring[interval]",
        });
      const usage = optString(rec, "usage_type", "recurring[usage_type]") ?? "licensed";
      if (usage !== "licensed" && usage !== "metered")
        throw invalid("Invalid recurring[usage_type]: must be one of licensed or metered", {
          param: "recurring[usage_type]",
        });
      const meter = optString(rec, "meter", "recurring[meter]") ?? null;
      // Since API version 2025-03-31 a metered price is backed by a billing meter.
      if (usage === "metered" && meter === null) throw missing("recurring[meter]");
      if (usage === "licensed" && meter !== null)
        throw invalid("recurring[meter] can only be set for metered prices.", { param: "recurring[meter]" });
      if (meter !== null && !call.account.meters.has(meter))
        throw noSuch("billing meter", meter, "recurring[meter]", 400);
      const countRaw = optString(rec, "interval_count", "recurring[interval_count]");
      recurring = {
        interval: interval as "day" | "week" | "month" | "year",
        interval_count: countRaw === undefined ? 1 : integer(countRaw, "recurring[interval_count]"),
        meter,
        trial_period_days: null,
        usage_type: usage,
      };
    } else if (scheme === "tiered") {
      throw invalid("Tiered prices must be recurring.", { param: "billing_scheme" });
    }
    const lookupKey = optString(p, "lookup_key") || null;
    if (lookupKey !== null) {
      if (lookupKey.length > 200)
        throw invalid("lookup_key must be at most 200 characters.", { param: "lookup_key" });
      const holder = [...call.account.prices.values()].find((price) => price.lookup_key === lookupKey);
      if (holder) {
        if (optString(p, "transfer_lookup_key") !== "true") {
          // Choice: the wording of this refusal is not documented; the rule is (api/prices/create).
          throw invalid(
            `A price (\`${holder.id}\`) already uses the lookup key \`${lookupKey}\`. Pass transfer_lookup_key=true to move it.`,
            { param: "lookup_key" },
          );
        }
        holder.lookup_key = null;
      }
    }
    const price: Price = {
      id: newId("price", 24),
      object: "price",
      active: optString(p, "active") !== "false",
      billing_scheme: scheme,
      created: call.nowS,
      currency,
      custom_unit_amount: null,
      livemode: call.livemode,
      lookup_key: lookupKey,
      metadata: metadataOf(p),
      nickname: optString(p, "nickname") || null,
      product: productId,
      recurring,
      tax_behavior: "unspecified",
      tiers_mode: tiersMode,
      transform_quantity: null,
      type: recurring ? "recurring" : "one_time",
      unit_amount: unitAmount,
      unit_amount_decimal: unitAmount === null ? null : String(unitAmount),
      ...(tiers ? { tiers } : {}),
    };
    call.account.prices.set(price.id, price);
    return { status: 200, body: priceOut(price, expansions(p).has("tiers")) };
  }

  function retrievePrice(call: Call, id: string): Reply {
    allowOnly(call.params, ["expand"]);
    const price = call.account.prices.get(id);
    if (!price) throw noSuch("price", id, "price", 404);
    return { status: 200, body: priceOut(price, expansions(call.params).has("tiers")) };
  }

  function listPrices(call: Call): Reply {
    const p = call.params;
    allowOnly(p, [
      "active",
      "currency",
      "lookup_keys",
      "product",
      "type",
      "limit",
      "starting_after",
      "ending_before",
      "expand",
    ]);
    const lookupKeys = list(p, "lookup_keys");
    if (lookupKeys && lookupKeys.length > 10)
      throw invalid("lookup_keys can have at most 10 entries.", { param: "lookup_keys" });
    const active = optString(p, "active");
    const product = optString(p, "product");
    const type = optString(p, "type");
    const currency = optString(p, "currency");
    const withTiers = expansions(p).has("data.tiers");
    const prices = [...call.account.prices.values()]
      .filter(
        (price) =>
          (!lookupKeys || (price.lookup_key !== null && lookupKeys.includes(price.lookup_key))) &&
          (active === undefined || String(price.active) === active) &&
          (product === undefined || price.product === product) &&
          (type === undefined || price.type === type) &&
          (currency === undefined || price.currency === currency),
      )
      .reverse()
      .map((price) => priceOut(price, withTiers));
    return { status: 200, body: paginate(prices, p, "/v1/prices") };
  }

  // Subscriptions (api/subscriptions). Choices: a subscription is `active` from creation (no first
  // invoice, payment method or incomplete state is modelled yet); every item of one subscription
  // shares its billing period, a calendar month from the anchor.

  function createSubscription(call: Call): Reply {
    const p = call.params;
    allowOnly(p, [
      "customer",
      "items",
      "metadata",
      "collection_method",
      "days_until_due",
      "payment_behavior",
      "proration_behavior",
      "description",
      "expand",
    ]);
    const customer = reqString(p, "customer");
    if (!call.account.customers.has(customer)) throw noSuch("customer", customer, "customer", 400);
    const itemsParam = hash(p, "items");
    if (!itemsParam || Object.keys(itemsParam).length === 0) throw missing("items");
    const collection = optString(p, "collection_method") ?? "charge_automatically";
    if (collection !== "charge_automatically" && collection !== "send_invoice")
      throw invalid("Invalid collection_method: must be one of charge_automatically or send_invoice", {
        param: "collection_method",
      });
    const daysRaw = optString(p, "days_until_due");
    if (collection === "send_invoice" && daysRaw === undefined) throw missing("days_until_due");
    const id = newId("sub", 24);
    const start = call.nowS;
    const end = monthsAfter(start, 1);
    const subscription: Subscription = {
      id,
      object: "subscription",
      application: null,
      application_fee_percent: null,
      automatic_tax: { disabled_reason: null, enabled: false, liability: null },
      billing_cycle_anchor: start,
      billing_cycle_anchor_config: null,
      billing_mode: { flexible: null, type: "classic" },
      billing_schedules: [],
      billing_thresholds: null,
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: null,
      cancellation_details: { comment: null, feedback: null, feedback_option: null, reason: null },
      collection_method: collection,
      created: start,
      currency: "",
      customer,
      customer_account: null,
      days_until_due: daysRaw === undefined ? null : integer(daysRaw, "days_until_due"),
      default_payment_method: null,
      default_source: null,
      default_tax_rates: [],
      description: optString(p, "description") || null,
      discounts: [],
      ended_at: null,
      invoice_settings: {
        account_tax_ids: null,
        custom_fields: null,
        description: null,
        footer: null,
        issuer: { type: "self" },
      },
      items: {
        object: "list",
        data: [],
        has_more: false,
        url: `/v1/subscription_items?subscription=${id}`,
      },
      latest_invoice: null,
      livemode: call.livemode,
      managed_payments: null,
      metadata: metadataOf(p),
      next_pending_invoice_item_invoice: null,
      on_behalf_of: null,
      pause_collection: null,
      payment_settings: {
        payment_method_options: null,
        payment_method_types: null,
        save_default_payment_method: "off",
      },
      pending_invoice_item_interval: null,
      pending_setup_intent: null,
      pending_update: null,
      schedule: null,
      start_date: start,
      status: "active",
      test_clock: null,
      transfer_data: null,
      trial_end: null,
      trial_settings: {
        end_behavior: { billing_cycle_anchor: null, missing_payment_method: "create_invoice" },
      },
      trial_start: null,
    };
    for (const [i, raw] of Object.entries(itemsParam)) {
      if (typeof raw === "string")
        throw invalid(`Invalid object: items[${i}] must be a hash.`, { param: `items[${i}]` });
      allowOnly(raw, ["price", "quantity", "metadata"], `items[${i}]`);
      subscription.items.data.push(newItem(call, subscription, raw, `items[${i}]`, start, end));
    }
    checkItems(subscription);
    oneCurrency(call, subscription);
    call.account.subscriptions.set(id, subscription);
    emit(momentOf(call), "customer.subscription.created", subscriptionOut(subscription));
    return { status: 200, body: subscriptionOut(subscription) };
  }

  function retrieveSubscription(call: Call, id: string): Reply {
    allowOnly(call.params, ["expand"]);
    return { status: 200, body: subscriptionOut(subscriptionOf(call, id)) };
  }

  function listSubscriptions(call: Call): Reply {
    const p = call.params;
    allowOnly(p, ["customer", "price", "status", "limit", "starting_after", "ending_before", "expand"]);
    const customer = optString(p, "customer");
    const price = optString(p, "price");
    // Default: every status but canceled (api/subscriptions/list).
    const status = optString(p, "status");
    const subscriptions = [...call.account.subscriptions.values()]
      .filter(
        (sub) =>
          (customer === undefined || sub.customer === customer) &&
          (price === undefined || sub.items.data.some((item) => item.price.id === price)) &&
          (status === "all" || (status === undefined ? sub.status !== "canceled" : sub.status === status)),
      )
      .reverse()
      .map(subscriptionOut);
    return { status: 200, body: paginate(subscriptions, p, "/v1/subscriptions") };
  }

  /**
   * Items given with `id` change (`price`, `quantity`) or go (`deleted`); items without `id` are
   * added. With `proration_behavior=create_prorations` (the default) a licensed item that goes or
   * changes price mid-period is credited for the unused time and the new one charged for it, as
   * pending invoice items (`proration: true`); metered items bill their usage, never prorate.
   * Choice: the amounts are rounded half away from zero to the minor unit; `always_invoice` is
   * refused (prorations are invoiced at the period end only).
   */
  function updateSubscription(call: Call, id: string): Reply {
    const p = call.params;
    allowOnly(p, [
      "items",
      "metadata",
      "proration_behavior",
      "proration_date",
      "cancel_at_period_end",
      "description",
      "expand",
    ]);
    const subscription = subscriptionOf(call, id);
    if (subscription.status === "canceled")
      throw invalid("A canceled subscription can only update its cancellation_details and metadata.", {
        param: "items",
      });
    const behavior = optString(p, "proration_behavior") ?? "create_prorations";
    if (behavior !== "create_prorations" && behavior !== "none")
      throw invalid(
        behavior === "always_invoice"
          ? "The Stripe stand-in invoices prorations at the period end only: proration_behavior=always_invoice is refused."
          : "Invalid proration_behavior: must be one of always_invoice, create_prorations, or none",
        { param: "proration_behavior" },
      );
    const prorationDateRaw = optString(p, "proration_date");
    const at = prorationDateRaw === undefined ? call.nowS : integer(prorationDateRaw, "proration_date");
    const first = subscription.items.data[0];
    const start = first?.current_period_start ?? call.nowS;
    const end = first?.current_period_end ?? monthsAfter(call.nowS, 1);
    const next = [...subscription.items.data];
    const prorations: Array<{ price: Price; sign: 1 | -1; quantity: number }> = [];
    const itemsParam = hash(p, "items") ?? {};
    for (const [i, raw] of Object.entries(itemsParam)) {
      const name = `items[${i}]`;
      if (typeof raw === "string") throw invalid(`Invalid object: ${name} must be a hash.`, { param: name });
      allowOnly(raw, ["id", "price", "quantity", "deleted", "clear_usage", "metadata"], name);
      const itemId = optString(raw, "id", `${name}[id]`);
      if (itemId === undefined) {
        const item = newItem(call, subscription, raw, name, start, end);
        next.push(item);
        if (item.price.recurring?.usage_type === "licensed")
          prorations.push({ price: item.price, sign: 1, quantity: item.quantity ?? 1 });
        continue;
      }
      const index = next.findIndex((item) => item.id === itemId);
      const existing = next[index];
      if (!existing) throw noSuch("subscription_item", itemId, `${name}[id]`, 400);
      const licensed = existing.price.recurring?.usage_type === "licensed";
      if (optString(raw, "deleted", `${name}[deleted]`) === "true") {
        next.splice(index, 1);
        if (licensed) prorations.push({ price: existing.price, sign: -1, quantity: existing.quantity ?? 1 });
        continue;
      }
      const priceId = optString(raw, "price", `${name}[price]`);
      const quantityRaw = optString(raw, "quantity", `${name}[quantity]`);
      const replaced = { ...existing };
      if (priceId !== undefined && priceId !== existing.price.id) {
        replaced.price = priceFor(call, priceId, `${name}[price]`);
        replaced.plan = planView(replaced.price);
      }
      if (quantityRaw !== undefined) replaced.quantity = nonNegative(quantityRaw, `${name}[quantity]`);
      if (replaced.price.recurring?.usage_type === "metered") delete replaced.quantity;
      else replaced.quantity ??= 1;
      next[index] = replaced;
      if (licensed) prorations.push({ price: existing.price, sign: -1, quantity: existing.quantity ?? 1 });
      if (replaced.price.recurring?.usage_type === "licensed")
        prorations.push({ price: replaced.price, sign: 1, quantity: replaced.quantity ?? 1 });
    }
    const updated: Subscription = {
      ...subscription,
      items: { ...subscription.items, data: next },
      metadata:
        p.metadata === undefined ? subscription.metadata : { ...subscription.metadata, ...metadataOf(p) },
      cancel_at_period_end:
        p.cancel_at_period_end === undefined
          ? subscription.cancel_at_period_end
          : optString(p, "cancel_at_period_end") === "true",
    };
    checkItems(updated);
    oneCurrency(call, updated);
    call.account.subscriptions.set(id, updated);
    emit(
      momentOf(call),
      "customer.subscription.updated",
      subscriptionOut(updated),
      subscriptionOut(subscription),
    );
    if (behavior === "create_prorations" && at >= start && at < end) {
      for (const { price, sign, quantity } of prorations) {
        const share = (price.unit_amount ?? 0) * quantity * ((end - at) / (end - start));
        const amount = sign * Math.round(Math.abs(share));
        if (amount === 0) continue;
        const ii: InvoiceItem = {
          id: newId("ii", 24),
          object: "invoiceitem",
          amount,
          currency: price.currency,
          customer: subscription.customer,
          customer_account: null,
          date: call.nowS,
          description: `${sign < 0 ? "Unused" : "Remaining"} time on ${price.nickname ?? price.id} after ${new Date(at * 1000).toISOString().slice(0, 10)}`,
          discountable: false,
          discounts: [],
          invoice: null,
          livemode: call.livemode,
          metadata: {},
          parent: {
            subscription_details: { subscription: id, subscription_item: null },
            type: "subscription_details",
          },
          period: { start: at, end },
          pricing: {
            price_details: { price: price.id, product: price.product },
            type: "price_details",
            unit_amount_decimal: String(amount),
          },
          proration: true,
          quantity: 1,
          quantity_decimal: "1",
          tax_rates: [],
          test_clock: null,
        };
        call.account.invoiceItems.set(ii.id, ii);
      }
    }
    return { status: 200, body: subscriptionOut(updated) };
  }

  function cancelSubscription(call: Call, id: string): Reply {
    allowOnly(call.params, ["invoice_now", "prorate", "expand"]);
    const subscription = subscriptionOf(call, id);
    if (subscription.status === "canceled") throw noSuch("subscription", id, "id", 404);
    const canceled: Subscription = {
      ...subscription,
      cancellation_details: {
        comment: null,
        feedback: null,
        feedback_option: null,
        reason: "cancellation_requested",
      },
      status: "canceled",
      canceled_at: call.nowS,
      ended_at: call.nowS,
    };
    call.account.subscriptions.set(id, canceled);
    emit(momentOf(call), "customer.subscription.deleted", subscriptionOut(canceled));
    return { status: 200, body: subscriptionOut(canceled) };
  }

  function listInvoiceItems(call: Call): Reply {
    const p = call.params;
    allowOnly(p, ["customer", "pending", "limit", "starting_after", "ending_before", "expand"]);
    const customer = optString(p, "customer");
    const items = [...call.account.invoiceItems.values()]
      .filter((ii) => customer === undefined || ii.customer === customer)
      .reverse();
    return { status: 200, body: paginate(items, p, "/v1/invoiceitems") };
  }

  /**
   * A customer bills in one currency: its first subscription sets it, and a subscription in
   * another is refused with Stripe's message (as reported by integrators).
   */
  function oneCurrency(call: Call, subscription: Subscription): void {
    const customer = call.account.customers.get(subscription.customer);
    if (!customer) return;
    if (customer.currency !== null && customer.currency !== subscription.currency)
      throw invalid(
        `You cannot combine currencies on a single customer. This customer has an active subscription, subscription schedule, discount, quote, or invoice item with currency ${customer.currency}.`,
      );
    customer.currency = subscription.currency;
  }

  function subscriptionOf(call: Call, id: string): Subscription {
    const subscription = call.account.subscriptions.get(id);
    if (!subscription) throw noSuch("subscription", id, "id", 404);
    return subscription;
  }

  function priceFor(call: Call, id: string, param: string): Price {
    const price = call.account.prices.get(id);
    if (!price) throw noSuch("price", id, param, 400);
    if (!price.recurring)
      throw invalid(
        `The price specified is set to \`type=one_time\` but this field only accepts prices with \`type=recurring\`.`,
        { param },
      );
    if (!price.active)
      throw invalid(`The price specified is inactive. This field only accepts active prices.`, { param });
    return price;
  }

  function newItem(
    call: Call,
    subscription: Subscription,
    raw: Params,
    name: string,
    start: number,
    end: number,
  ): SubscriptionItem {
    const price = priceFor(call, reqString(raw, "price", `${name}[price]`), `${name}[price]`);
    const quantityRaw = optString(raw, "quantity", `${name}[quantity]`);
    const metered = price.recurring?.usage_type === "metered";
    if (metered && quantityRaw !== undefined)
      throw invalid("Quantity should not be specified where usage_type is `metered`. Remove quantity.", {
        param: `${name}[quantity]`,
      });
    return {
      id: newId("si", 14),
      object: "subscription_item",
      billing_thresholds: null,
      created: call.nowS,
      current_period_end: end,
      current_period_start: start,
      current_trial: null,
      discounts: [],
      metadata: metadataOf(raw),
      plan: planView(price),
      price,
      ...(metered
        ? {}
        : { quantity: quantityRaw === undefined ? 1 : nonNegative(quantityRaw, `${name}[quantity]`) }),
      subscription: subscription.id,
      tax_rates: [],
    };
  }

  function retrieveCustomer(call: Call, id: string): Reply {
    allowOnly(call.params, ["expand"]);
    const customer = call.account.customers.get(id);
    if (!customer) throw noSuch("customer", id, "id", 404);
    return { status: 200, body: customer };
  }

  function createMeter(call: Call): Reply {
    const p = call.params;
    allowOnly(p, [
      "display_name",
      "event_name",
      "default_aggregation",
      "customer_mapping",
      "value_settings",
      "event_time_window",
      "expand",
    ]);
    const displayName = reqString(p, "display_name");
    const eventName = reqString(p, "event_name");
    if (eventName.length > 100) {
      throw invalid("event_name must be at most 100 characters.", { param: "event_name" });
    }
    const aggregation = hash(p, "default_aggregation");
    if (!aggregation) throw missing("default_aggregation");
    allowOnly(aggregation, ["formula"], "default_aggregation");
    const formula = reqString(aggregation, "formula", "default_aggregation[formula]");
    if (!FORMULAS.includes(formula as Formula)) {
      throw invalid(`Invalid default_aggregation[formula]: must be one of ${FORMULAS.join(", ")}`, {
        param: "default_aggregation[formula]",
      });
    }
    let customerKey = "stripe_customer_id";
    const mapping = hash(p, "customer_mapping");
    if (mapping) {
      allowOnly(mapping, ["event_payload_key", "type"], "customer_mapping");
      customerKey = reqString(mapping, "event_payload_key", "customer_mapping[event_payload_key]");
      const type = reqString(mapping, "type", "customer_mapping[type]");
      if (type !== "by_id") {
        throw invalid("Invalid customer_mapping[type]: must be by_id", { param: "customer_mapping[type]" });
      }
    }
    let valueKey = "value";
    const valueSettings = hash(p, "value_settings");
    if (valueSettings) {
      allowOnly(valueSettings, ["event_payload_key"], "value_settings");
      valueKey = reqString(valueSettings, "event_payload_key", "value_settings[event_payload_key]");
    }
    if (p.event_time_window !== undefined) {
      // Choice: pre-aggregated meters (last event per window wins) are not modelled; refuse rather
      // than aggregate them wrongly.
      throw invalid("The Stripe stand-in does not support event_time_window (pre-aggregated meters).", {
        param: "event_time_window",
      });
    }
    // Choice: one active meter per event_name (Stripe routes events to a meter by event_name; the
    // exact refusal message is not documented).
    for (const meter of call.account.meters.values()) {
      if (meter.event_name === eventName && meter.status === "active") {
        throw invalid(`An active meter with event_name '${eventName}' already exists (${meter.id}).`, {
          param: "event_name",
        });
      }
    }
    const meter: Meter = {
      id: newId(call.livemode ? "mtr" : "mtr_test", 32),
      object: "billing.meter",
      created: call.nowS,
      customer_mapping: { event_payload_key: customerKey, type: "by_id" },
      default_aggregation: { formula: formula as Formula },
      display_name: displayName,
      event_name: eventName,
      event_time_window: null,
      livemode: call.livemode,
      status: "active",
      status_transitions: { deactivated_at: null },
      updated: call.nowS,
      value_settings: { event_payload_key: valueKey },
    };
    call.account.meters.set(meter.id, meter);
    return { status: 200, body: meter };
  }

  function listMeters(call: Call): Reply {
    const p = call.params;
    allowOnly(p, ["limit", "starting_after", "ending_before", "status", "expand"]);
    const status = optString(p, "status");
    if (status && status !== "active" && status !== "inactive") {
      throw invalid("Invalid status: must be one of active or inactive", { param: "status" });
    }
    const meters = [...call.account.meters.values()].filter((m) => !status || m.status === status).reverse();
    return { status: 200, body: paginate(meters, p, "/v1/billing/meters") };
  }

  function retrieveMeter(call: Call, id: string): Reply {
    allowOnly(call.params, ["expand"]);
    const meter = call.account.meters.get(id);
    if (!meter) throw noSuch("billing meter", id, "id", 404);
    return { status: 200, body: meter };
  }

  function createMeterEvent(call: Call): Reply {
    const p = call.params;
    allowOnly(p, ["event_name", "payload", "identifier", "timestamp", "expand"]);
    const eventName = reqString(p, "event_name");
    const payload = hash(p, "payload");
    if (!payload) throw missing("payload");
    for (const [k, v] of Object.entries(payload)) {
      if (typeof v !== "string")
        throw invalid(`Invalid string: payload[${k}] must be a string.`, { param: `payload[${k}]` });
    }
    const identifierParam = optString(p, "identifier");
    if (identifierParam !== undefined && identifierParam.length === 0) {
      throw invalid("identifier must not be empty.", { param: "identifier" });
    }
    if (identifierParam && identifierParam.length > 100) {
      throw invalid("identifier must be at most 100 characters.", { param: "identifier" });
    }
    const timestampParam = optString(p, "timestamp");
    const timestamp = timestampParam === undefined ? call.nowS : integer(timestampParam, "timestamp");
    if (timestamp < call.nowS - MAX_PAST_S) {
      throw invalid(
        `Timestamp ${timestamp} is too far in the past: meter events must be within the past 35 calendar days.`,
        { param: "timestamp" },
      );
    }
    if (timestamp > call.nowS + MAX_FUTURE_S) {
      throw invalid(
        `Timestamp ${timestamp} is too far in the future: meter events can be at most 5 minutes in the future.`,
        { param: "timestamp" },
      );
    }
    // Choice: the checks Stripe reports asynchronously for v1 events (meter error reports:
    // no_meter, meter_event_no_customer_defined, meter_event_customer_not_found,
    // meter_event_invalid_value) are synchronous 400s here, so a mistake fails loudly in tests.
    const meter = [...call.account.meters.values()].find(
      (m) => m.event_name === eventName && m.status === "active",
    );
    if (!meter) {
      throw invalid(`No active meter found for event_name '${eventName}'.`, { param: "event_name" });
    }
    const customerKey = meter.customer_mapping.event_payload_key;
    const customerId = payload[customerKey];
    if (typeof customerId !== "string" || customerId === "") throw missing(`payload[${customerKey}]`);
    if (!call.account.customers.has(customerId))
      throw noSuch("customer", customerId, `payload[${customerKey}]`, 400);
    const valueKey = meter.value_settings.event_payload_key;
    const rawValue = payload[valueKey];
    if (typeof rawValue !== "string" || rawValue === "") throw missing(`payload[${valueKey}]`);
    const value = Number(rawValue);
    if (!/^-?(\d+\.?\d*|\.\d+)$/.test(rawValue.trim()) || !Number.isFinite(value)) {
      throw invalid(`Invalid payload[${valueKey}]: '${rawValue}' is not a number.`, {
        param: `payload[${valueKey}]`,
      });
    }

    // The identifier check comes last: an invalid event does not claim its identifier.
    const nowMs = call.nowS * 1000;
    for (const [id, expiresAt] of call.account.identifiers) {
      if (expiresAt <= nowMs) call.account.identifiers.delete(id);
    }
    const identifier = identifierParam ?? randomUUID();
    if (call.account.identifiers.has(identifier)) {
      throw new StripeFault(
        400,
        "invalid_request_error",
        `An event already exists with identifier ${identifier}.`,
        {
          headers: { "Stripe-Should-Retry": "false" },
        },
      );
    }
    call.account.identifiers.set(identifier, nowMs + IDENTIFIER_TTL_MS);
    const stringPayload = payload as Record<string, string>;
    const event: AcceptedMeterEvent = {
      object: "billing.meter_event",
      created: call.nowS,
      event_name: eventName,
      identifier,
      livemode: call.livemode,
      payload: { ...stringPayload },
      timestamp,
      meter: meter.id,
      customer: customerId,
      value,
      request_id: call.requestId,
    };
    call.account.events.push(event);
    const { meter: _m, customer: _c, value: _v, request_id: _r, ...stripeObject } = event;
    return { status: 200, body: stripeObject };
  }

  function listSummaries(call: Call, meterId: string): Reply {
    const p = call.params;
    allowOnly(p, [
      "customer",
      "start_time",
      "end_time",
      "value_grouping_window",
      "limit",
      "starting_after",
      "ending_before",
      "expand",
    ]);
    const meter = call.account.meters.get(meterId);
    if (!meter) throw noSuch("billing meter", meterId, "id", 404);
    const customer = reqString(p, "customer");
    if (!call.account.customers.has(customer)) throw noSuch("customer", customer, "customer", 400);
    const start = integer(reqString(p, "start_time"), "start_time");
    const end = integer(reqString(p, "end_time"), "end_time");
    for (const [name, t] of [
      ["start_time", start],
      ["end_time", end],
    ] as const) {
      if (t % 60 !== 0) throw invalid(`${name} must be aligned with minute boundaries.`, { param: name });
    }
    if (end <= start) throw invalid("end_time must be after start_time.", { param: "end_time" });
    const grouping = optString(p, "value_grouping_window");
    let size = end - start;
    if (grouping !== undefined) {
      if (grouping === "hour") size = 3_600;
      else if (grouping === "day") size = DAY;
      else {
        throw invalid("Invalid value_grouping_window: must be one of day or hour", {
          param: "value_grouping_window",
        });
      }
      for (const [name, t] of [
        ["start_time", start],
        ["end_time", end],
      ] as const) {
        if (t % size !== 0) {
          const rule =
            grouping === "hour"
              ? "hour boundaries (e.g., 00:00, 01:00, ..., 23:00)"
              : "UTC day boundaries (00:00 UTC)";
          throw invalid(`With value_grouping_window=${grouping}, ${name} must be aligned with ${rule}.`, {
            param: name,
          });
        }
      }
    }
    const events = call.account.events.filter(
      (e) => e.meter === meter.id && e.customer === customer && e.timestamp >= start && e.timestamp < end,
    );
    const summaries: Array<Record<string, unknown> & { id: string }> = [];
    for (let windowStart = start; windowStart < end; windowStart += size) {
      const windowEnd = windowStart + size;
      const inWindow = events.filter((e) => e.timestamp >= windowStart && e.timestamp < windowEnd);
      if (grouping !== undefined && inWindow.length === 0) continue;
      summaries.push({
        id: summaryId(meter, customer, windowStart, windowEnd),
        object: "billing.meter_event_summary",
        aggregated_value: aggregate(meter.default_aggregation.formula, inWindow),
        end_time: windowEnd,
        livemode: call.livemode,
        meter: meter.id,
        start_time: windowStart,
      });
    }
    summaries.reverse(); // newest window first, as in the docs' example
    return { status: 200, body: paginate(summaries, p, `/v1/billing/meters/${meter.id}/event_summaries`) };
  }

  // ---- Server lifecycle ----------------------------------------------------------------------------

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  origin = `http://${urlHost}:${port}`;
  return {
    url: `http://${urlHost}:${port}`,
    host,
    port,
    stop: async () => {
      await close(server);
      if (saveTimer) saveNow();
    },
    failNext,
    setLatency,
    reset,
    resetFaults,
  };
}

// ---- Helpers ------------------------------------------------------------------------------------

function apiKey(req: IncomingMessage): string {
  const authorization = header(req, "authorization");
  const unauthorized = (message: string) => {
    const fault = invalid(message, { status: 401 });
    fault.extra.headers = { "WWW-Authenticate": 'Bearer realm="Stripe"' };
    return fault;
  };
  if (!authorization) {
    throw unauthorized(
      "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
    );
  }
  let key = "";
  const [scheme = "", credentials = ""] = authorization.trim().split(/\s+/, 2);
  if (/^bearer$/i.test(scheme)) key = credentials;
  else if (/^basic$/i.test(scheme)) {
    key = Buffer.from(credentials, "base64").toString("utf8").split(":")[0] ?? "";
  }
  if (!/^sk_(test|live)_[A-Za-z0-9_]+$/.test(key))
    throw unauthorized(`Invalid API Key provided: ${redactKey(key)}`);
  return key;
}

/** Stripe shows the prefix and the last four characters. */
function redactKey(key: string): string {
  const prefix = /^(sk|pk|rk)_(test|live)_/.exec(key)?.[0] ?? "";
  const rest = key.slice(prefix.length);
  if (rest.length <= 4) return `${prefix}${"*".repeat(rest.length)}`;
  return `${prefix}${"*".repeat(rest.length - 4)}${rest.slice(-4)}`;
}

function parseBody(req: IncomingMessage, raw: string): Params {
  if (!raw) return Object.create(null) as Params;
  const type = (header(req, "content-type") ?? "").split(";")[0]?.trim().toLowerCase();
  if (type && type !== "application/x-www-form-urlencoded") {
    // Choice: Stripe's v1 API takes form bodies only; say so rather than ignore the body.
    throw invalid(
      `Invalid request: v1 endpoints take application/x-www-form-urlencoded bodies, not ${type}.`,
    );
  }
  return parseForm(raw);
}

/** Stripe's form encoding: `a=1&b[c]=2&d[0]=x` (also `d[]=x`); the last value of a repeated scalar wins. */
export function parseForm(text: string): Params {
  const root = Object.create(null) as Params;
  if (!text) return root;
  let entries: Array<[string, string]>;
  try {
    entries = [...new URLSearchParams(text)];
  } catch {
    throw invalid("Invalid request: the form body could not be parsed.");
  }
  for (const [name, value] of entries) {
    if (name === "") continue;
    const match = /^([^[\]]+)((?:\[[^[\]]*\])*)$/.exec(name);
    if (!match?.[1]) throw invalid(`Invalid parameter name: ${name}`, { param: name });
    const path = [match[1], ...[...(match[2] ?? "").matchAll(/\[([^[\]]*)\]/g)].map((m) => m[1] ?? "")];
    let node = root;
    for (let i = 0; i < path.length; i++) {
      let segment = path[i] ?? "";
      const last = i === path.length - 1;
      if (segment === "") segment = String(Object.keys(node).length); // `a[]=x` appends
      const existing = node[segment];
      if (last) {
        if (existing !== undefined && typeof existing !== "string") {
          throw invalid(`Invalid parameters: ${name} is given both as a value and as a hash.`, {
            param: name,
          });
        }
        node[segment] = value;
      } else {
        if (typeof existing === "string") {
          throw invalid(`Invalid parameters: ${name} is given both as a value and as a hash.`, {
            param: name,
          });
        }
        const child = existing ?? (Object.create(null) as Params);
        node[segment] = child;
        node = child;
      }
    }
  }
  return root;
}

/** A subscription's items must share a currency and interval, and name each price once. */
function checkItems(subscription: Subscription): void {
  const items = subscription.items.data;
  if (items.length === 0) throw invalid("A subscription needs at least one item.", { param: "items" });
  if (items.length > 20) throw invalid("A subscription can have at most 20 items.", { param: "items" });
  const [first] = items;
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.price.id))
      throw invalid(`Cannot add multiple subscription items with the same price: ${item.price.id}`, {
        param: "items",
      });
    seen.add(item.price.id);
    if (item.price.currency !== first?.price.currency)
      throw invalid("All prices on a subscription must have the same currency.", { param: "items" });
    const a = item.price.recurring;
    const b = first.price.recurring;
    if (a?.interval !== b?.interval || a?.interval_count !== b?.interval_count)
      throw invalid(
        "All prices on a subscription must have the same recurring.interval and recurring.interval_count.",
        { param: "items" },
      );
  }
  subscription.currency = first?.price.currency ?? "";
}

function tiersOf(params: Params): PriceTier[] {
  const raw = hash(params, "tiers");
  if (!raw) throw missing("tiers");
  const tiers: PriceTier[] = [];
  const entries = Object.entries(raw);
  for (const [n, [i, tier]] of entries.entries()) {
    const name = `tiers[${i}]`;
    if (typeof tier === "string") throw invalid(`Invalid object: ${name} must be a hash.`, { param: name });
    allowOnly(
      tier,
      ["up_to", "unit_amount", "flat_amount", "unit_amount_decimal", "flat_amount_decimal"],
      name,
    );
    const upToRaw = reqString(tier, "up_to", `${name}[up_to]`);
    const upTo = upToRaw === "inf" ? null : integer(upToRaw, `${name}[up_to]`);
    if (upTo !== null && upTo < 1)
      throw invalid(`${name}[up_to] must be at least 1.`, { param: `${name}[up_to]` });
    const last = n === entries.length - 1;
    if (last !== (upTo === null))
      throw invalid("Only the last tier may (and must) have up_to set to inf.", { param: `${name}[up_to]` });
    const previous = tiers[tiers.length - 1]?.up_to;
    if (upTo !== null && previous != null && upTo <= previous)
      throw invalid("Tiers must be ordered by up_to, ascending.", { param: `${name}[up_to]` });
    const unitRaw = optString(tier, "unit_amount", `${name}[unit_amount]`);
    const flatRaw = optString(tier, "flat_amount", `${name}[flat_amount]`);
    if (unitRaw === undefined && flatRaw === undefined)
      throw invalid(`${name} needs unit_amount or flat_amount.`, { param: `${name}[unit_amount]` });
    const unit = unitRaw === undefined ? null : nonNegative(unitRaw, `${name}[unit_amount]`);
    const flat = flatRaw === undefined ? null : nonNegative(flatRaw, `${name}[flat_amount]`);
    tiers.push({
      flat_amount: flat,
      flat_amount_decimal: flat === null ? null : String(flat),
      unit_amount: unit,
      unit_amount_decimal: unit === null ? null : String(unit),
      up_to: upTo,
    });
  }
  if (tiers.length === 0) throw missing("tiers");
  return tiers;
}

/** Deterministic, so cursors survive between list calls. */
function summaryId(meter: Meter, customer: string, start: number, end: number): string {
  const tag = Buffer.from(`${meter.id}|${customer}|${start}|${end}`).toString("hex");
  return `${meter.livemode ? "mtrusg" : "mtrusg_test"}_${tag}`;
}

function errorBody(fault: StripeFault, requestId: string): { error: Record<string, unknown> } {
  const error: Record<string, unknown> = {};
  if (fault.extra.code) {
    error.code = fault.extra.code;
    error.doc_url = `https://stripe.com/docs/error-codes/${fault.extra.code.replace(/_/g, "-")}`;
  }
  error.message = fault.message;
  if (fault.extra.param) error.param = fault.extra.param;
  error.request_log_url = `https://dashboard.stripe.com/test/logs/${requestId}`;
  error.type = fault.type;
  return { error };
}

/** Canonical JSON of the params (keys sorted), to compare an idempotent retry with the original. */
function canonical(params: Param): string {
  if (typeof params === "string") return JSON.stringify(params);
  return `{${Object.keys(params)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonical(params[k] as Param)}`)
    .join(",")}}`;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

const newRequestId = () => newId("req", 14);

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(invalid("Request body too large.", { status: 413 }));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** A control endpoint's JSON, or a page. */
function sendLocal(res: ServerResponse, answer: LocalAnswer): void {
  if (!answer.contentType) {
    send(res, answer.status, answer.body, answer.headers);
    return;
  }
  const text = String(answer.body);
  res.writeHead(answer.status, {
    "Content-Type": answer.contentType,
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-cache, no-store",
    ...answer.headers,
  });
  res.end(text);
}

function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = `${JSON.stringify(body, null, 2)}\n`;
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    "Cache-Control": "no-cache, no-store",
    ...headers,
  });
  res.end(text);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

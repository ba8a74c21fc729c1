/**
 * A local Stripe stand-in: a Node HTTP server speaking Stripe's v1 wire protocol for just the
 * endpoints the gateway uses (customers, billing meters, meter events, meter event summaries), so
 * the official `stripe` package — inside workerd, pointed here with `host`/`port`/`protocol` —
 * runs the same code path locally and in tests as against api.stripe.com.
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
 *
 * Every call the gateway makes is checked against Stripe's published OpenAPI spec and example objects
 * (request and answer) by `npm run test:contract` (test/contract/stripe-contract.ts): change an
 * answer's shape here and that check says where it departs from Stripe's.
 *
 * Choices where the docs are silent are marked "Choice:" below. Test and live keys see separate
 * data (as two Stripe modes do). Data lives in memory, or in `stateFile` when given. Fault injection and inspection live under `/__control/` (no auth):
 * `fail`, `latency`, `reset-faults` (clears both; tests call it before each test), `reset` (everything), `events`.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { dirname } from "node:path";

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

/** One accepted meter event, as `GET /__control/events` lists it. */
export interface AcceptedMeterEvent {
  object: "billing.meter_event";
  created: number;
  event_name: string;
  identifier: string;
  livemode: boolean;
  payload: Record<string, string>;
  timestamp: number;
  /** Not part of Stripe's object: what the stand-in resolved it to. */
  meter: string;
  customer: string;
  value: number;
  request_id: string;
}

const DAY = 86_400;
const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;
const IDENTIFIER_TTL_MS = 24 * 3_600_000;
const MAX_PAST_S = 35 * DAY;
const MAX_FUTURE_S = 5 * 60;
const MAX_BODY_BYTES = 1 << 20;
// Choice: the version the `stripe` package in this repo pins, answered when a request names none.
const DEFAULT_STRIPE_VERSION = "2026-10-28.endive";
const FORMULAS = ["sum", "count", "last"] as const;
type Formula = (typeof FORMULAS)[number];

type Params = { [key: string]: Param };
type Param = string | Params;

interface Customer {
  id: string;
  object: "customer";
  address: null;
  balance: number;
  created: number;
  currency: null;
  default_source: null;
  delinquent: boolean;
  description: string | null;
  discount: null;
  email: string | null;
  invoice_prefix: string;
  invoice_settings: {
    custom_fields: null;
    default_payment_method: null;
    footer: null;
    rendering_options: null;
  };
  livemode: boolean;
  metadata: Record<string, string>;
  name: string | null;
  next_invoice_sequence: number;
  phone: string | null;
  preferred_locales: string[];
  shipping: null;
  tax_exempt: "none";
  test_clock: null;
}

interface Meter {
  id: string;
  object: "billing.meter";
  created: number;
  customer_mapping: { event_payload_key: string; type: "by_id" };
  default_aggregation: { formula: Formula };
  display_name: string;
  event_name: string;
  event_time_window: null;
  livemode: boolean;
  status: "active";
  status_transitions: { deactivated_at: null };
  updated: number;
  value_settings: { event_payload_key: string };
}

interface SavedResponse {
  method: string;
  path: string;
  params: string;
  status: number;
  body: unknown;
  requestId: string;
  expiresAt: number;
}

/** One Stripe mode's data (test or live keys). */
class Account {
  customers = new Map<string, Customer>();
  meters = new Map<string, Meter>();
  events: AcceptedMeterEvent[] = [];
  /** identifier → expiry (ms). */
  identifiers = new Map<string, number>();
  idempotency = new Map<string, SavedResponse>();

  toJSON() {
    return {
      customers: [...this.customers.values()],
      meters: [...this.meters.values()],
      events: this.events,
      identifiers: [...this.identifiers],
      idempotency: [...this.idempotency],
    };
  }

  static fromJSON(json: ReturnType<Account["toJSON"]> | undefined): Account {
    const account = new Account();
    if (!json) return account;
    for (const c of json.customers) account.customers.set(c.id, c);
    for (const m of json.meters) account.meters.set(m.id, m);
    account.events = json.events;
    account.identifiers = new Map(json.identifiers);
    account.idempotency = new Map(json.idempotency);
    return account;
  }
}

/** An error answered in Stripe's envelope. */
class StripeFault extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly extra: { code?: string; param?: string; headers?: Record<string, string> } = {},
  ) {
    super(message);
  }
}

const invalid = (message: string, extra: { code?: string; param?: string; status?: number } = {}) =>
  new StripeFault(extra.status ?? 400, "invalid_request_error", message, extra);
const missing = (param: string) =>
  invalid(`Missing required param: ${param}.`, { code: "parameter_missing", param });

interface Reply {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

interface Call {
  method: string;
  path: string;
  params: Params;
  account: Account;
  livemode: boolean;
  requestId: string;
  nowS: number;
}

export async function startStripeStandIn(options: StripeStandInOptions = {}): Promise<StripeStandIn> {
  const host = options.host ?? "127.0.0.1";
  const now = options.now ?? Date.now;
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
    const route = findRoute(method, url.pathname);
    if (!route) {
      throw invalid(
        `Unrecognized request URL (${method}: ${url.pathname}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
        { status: 404 },
      );
    }

    const params =
      method === "GET" || method === "DELETE" ? parseForm(url.search.slice(1)) : parseBody(req, raw);
    const call: Call = {
      method,
      path: url.pathname,
      params,
      account,
      livemode,
      requestId,
      nowS: Math.floor(nowMs / 1000),
    };

    // Stripe ignores Idempotency-Key on GET and DELETE ("has no effect").
    const idempotencyKey = method === "POST" ? header(req, "idempotency-key") : undefined;
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
    { method: "GET", pattern: /^\/v1\/customers\/([^/]+)$/, handler: retrieveCustomer },
    { method: "POST", pattern: /^\/v1\/billing\/meters$/, handler: createMeter },
    { method: "GET", pattern: /^\/v1\/billing\/meters$/, handler: listMeters },
    { method: "GET", pattern: /^\/v1\/billing\/meters\/([^/]+)$/, handler: retrieveMeter },
    { method: "GET", pattern: /^\/v1\/billing\/meters\/([^/]+)\/event_summaries$/, handler: listSummaries },
    { method: "POST", pattern: /^\/v1\/billing\/meter_events$/, handler: createMeterEvent },
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
    return { status: 200, body: customer };
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

function allowOnly(params: Params, allowed: string[], prefix?: string): void {
  for (const key of Object.keys(params)) {
    if (!allowed.includes(key)) {
      const name = prefix ? `${prefix}[${key}]` : key;
      throw invalid(`Received unknown parameter: ${name}`, { code: "parameter_unknown", param: name });
    }
  }
}

function optString(params: Params, key: string, name = key): string | undefined {
  const value = params[key];
  if (value === undefined) return undefined;
  if (typeof value !== "string")
    throw invalid(`Invalid string: ${name} must be a string, not a hash.`, { param: name });
  return value;
}

function reqString(params: Params, key: string, name = key): string {
  const value = optString(params, key, name);
  if (value === undefined || value === "") throw missing(name);
  return value;
}

function hash(params: Params, key: string): Params | undefined {
  const value = params[key];
  if (value === undefined || value === "") return undefined;
  if (typeof value === "string") throw invalid(`Invalid object: ${key} must be a hash.`, { param: key });
  return value;
}

function integer(raw: string, param: string): number {
  if (!/^-?\d+$/.test(raw.trim()))
    throw invalid(`Invalid integer: ${raw}`, { code: "parameter_invalid_integer", param });
  const n = Number(raw);
  if (!Number.isSafeInteger(n))
    throw invalid(`Invalid integer: ${raw}`, { code: "parameter_invalid_integer", param });
  return n;
}

function metadataOf(params: Params): Record<string, string> {
  const raw = hash(params, "metadata");
  const metadata: Record<string, string> = {};
  if (!raw) return metadata;
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== "string")
      throw invalid(`Invalid string: metadata[${k}] must be a string.`, { param: `metadata[${k}]` });
    if (k.length > 40)
      throw invalid("Metadata keys can be at most 40 characters.", { param: `metadata[${k}]` });
    if (v.length > 500)
      throw invalid("Metadata values can be at most 500 characters.", { param: `metadata[${k}]` });
    if (v !== "") metadata[k] = v; // an empty value unsets a key
  }
  if (Object.keys(metadata).length > 50)
    throw invalid("Metadata can have at most 50 keys.", { param: "metadata" });
  return metadata;
}

/**
 * Stripe's "No such customer: 'cus_…'" (`resource_missing`): 404 for the object in the path, 400 for
 * one named by a parameter. Choice: "billing meter" as the meter's name in the message, and the
 * "a similar object exists in live mode" hint is not modelled.
 */
function noSuch(what: string, id: string, param: string, status: number): StripeFault {
  return invalid(`No such ${what}: '${id}'`, { code: "resource_missing", param, status });
}

function aggregate(formula: Formula, events: AcceptedMeterEvent[]): number {
  if (formula === "count") return events.length;
  if (formula === "last") {
    // Choice: "last" = the value of the event with the latest timestamp (ties: the last received).
    let latest: AcceptedMeterEvent | undefined;
    for (const e of events) if (!latest || e.timestamp >= latest.timestamp) latest = e;
    return latest?.value ?? 0;
  }
  // Rounded to 15 significant digits so that decimal values sum as decimals (0.1 + 0.2 = 0.3).
  const total = events.reduce((sum, e) => sum + e.value, 0);
  return Number(total.toPrecision(15));
}

/** Deterministic, so cursors survive between list calls. */
function summaryId(meter: Meter, customer: string, start: number, end: number): string {
  const tag = Buffer.from(`${meter.id}|${customer}|${start}|${end}`).toString("hex");
  return `${meter.livemode ? "mtrusg" : "mtrusg_test"}_${tag}`;
}

function paginate<T extends { id: string }>(
  items: T[],
  params: Params,
  url: string,
): { object: "list"; data: T[]; has_more: boolean; url: string } {
  const limitRaw = optString(params, "limit");
  const limit = limitRaw === undefined ? 10 : integer(limitRaw, "limit");
  if (limit < 1 || limit > 100)
    throw invalid("Invalid limit: must be between 1 and 100.", { param: "limit" });
  const after = optString(params, "starting_after");
  const before = optString(params, "ending_before");
  if (after && before) {
    throw invalid("You may only specify one of these parameters: ending_before, starting_after.", {
      param: "starting_after",
    });
  }
  let data: T[];
  let hasMore: boolean;
  if (before) {
    const i = items.findIndex((item) => item.id === before);
    if (i < 0)
      throw invalid(`No such object: '${before}'`, { code: "resource_missing", param: "ending_before" });
    const from = Math.max(0, i - limit);
    data = items.slice(from, i);
    hasMore = from > 0;
  } else {
    const i = after ? items.findIndex((item) => item.id === after) : -1;
    if (after && i < 0)
      throw invalid(`No such object: '${after}'`, { code: "resource_missing", param: "starting_after" });
    data = items.slice(i + 1, i + 1 + limit);
    hasMore = i + 1 + limit < items.length;
  }
  return { object: "list", data, has_more: hasMore, url };
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

const ALPHANUMERIC = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
function randomChars(n: number): string {
  const bytes = randomBytes(n);
  let out = "";
  for (const b of bytes) out += ALPHANUMERIC[b % ALPHANUMERIC.length];
  return out;
}
const newId = (prefix: string, n: number) => `${prefix}_${randomChars(n)}`;
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

/**
 * The one AppEnv type: Worker bindings (from wrangler.toml) and per-request context variables.
 */

import type { SlotRequest } from "../durable-objects/concurrency";
import type { CurrentUsage, TenantLimiter } from "../durable-objects/tenant";
import type { UsageSpool } from "../durable-objects/usage-spool";
import type { WebSession } from "../schema";
import type { AuditDetail } from "./audit/detail";
import type { Route } from "./edge/route-table";
import type { EventsQueueMessage } from "./events/messages";
import type { LogLevel } from "./log";
import type { ReportMessage } from "./metering/report-message";
import type { UsageEnvelope, UsageEvent } from "./metering/usage-event";
import type { AuthContext } from "./shared/auth-context";
import type { Db } from "./shared/db";

export interface Bindings {
  /** `apikey:<sha256>` and `tenant:<id>` records, projected from Postgres by the admin API. */
  API_KEYS: KVNamespace;
  /** One TenantLimiter Durable Object per tenant (`getByName(tenantId)`): the admission authority. */
  TENANT: DurableObjectNamespace<TenantLimiter>;
  /**
   * Usage events, many per message (`UsageEnvelope`; a bare `UsageEvent` is the legacy form); consumed by the
   * metering pipeline. A `ReportMessage` asks the consumer to go on with a billing report that ran out of budget.
   */
  USAGE_QUEUE: Queue<UsageEnvelope | UsageEvent | ReportMessage>;
  /** Usage batches the queue refused, re-sent from an alarm (`getByName("usage-spool-<n>")`). */
  USAGE_SPOOL: DurableObjectNamespace<UsageSpool>;
  /** Usage messages that can never be stored (invalid, unknown tenant), with the reason. */
  USAGE_DLQ: Queue<unknown>;
  /** Webhook deliveries to tenants, and events decided in the tenant object (workers/events/messages.ts). */
  EVENTS_QUEUE: Queue<EventsQueueMessage>;
  /** Secret. Stripe API key; unset = usage reporting to Stripe is off. */
  STRIPE_SECRET_KEY?: string;
  /**
   * Secret. The `whsec_…` signing secret of the Stripe webhook endpoint (`POST /webhooks/stripe`);
   * unset, that endpoint answers 503. Locally, `npm start` passes the one its `stripe listen`
   * (dev/stripe-listen.ts) signs with.
   */
  STRIPE_WEBHOOK_SECRET?: string;
  /** Local only: base URL of the Stripe stand-in (dev/stripe-standin.ts). Unset = api.stripe.com. */
  STRIPE_API_URL?: string;
  /** Stripe billing meter event name usage is reported under (default `gateway_units`). */
  STRIPE_METER_EVENT_NAME?: string;
  /** Seconds after an hour ends before its usage is reported to Stripe (default 600). */
  STRIPE_REPORT_LATENESS_S?: string;
  /** Seconds a past-due tenant's requests still pass (with a warning) before 402 (default 604800, 7 days). */
  BILLING_GRACE_PERIOD_S?: string;
  /** Secret. Postgres connection string (Neon in production). */
  DATABASE_URL: string;
  /** Local only: `host:port/path` of the WebSocket→TCP bridge in front of a plain Postgres. Unset in production. */
  PG_WS_PROXY?: string;
  /** Secret. Bearer token for `/admin/v1/*`. */
  ADMIN_TOKEN: string;
  /** Secret. HMAC key for the signed tenant claims sent to the origin (`X-Gateway-Claims`). */
  CLAIMS_SECRET: string;
  /** Origin for live keys. */
  ORIGIN_URL: string;
  /** Origin for test (`gw_test_`) keys. */
  SANDBOX_ORIGIN_URL: string;
  /** Default origin timeout; a route may set its own `timeoutMs`. */
  ORIGIN_TIMEOUT_MS?: string;
  /** JSON route table; see workers/edge/route-table.ts. */
  ROUTES: string;
  /** Lease mode: the lifetime of an isolate's lease in ms, 10–1000 (default 1000): the bound on a revocation's delay. */
  LEASE_MS?: string;
  /** Largest request body proxied, in bytes (default 10 MiB). */
  MAX_BODY_BYTES?: string;
  /** Fair shedding when a route's origin degrades (workers/edge/shed.ts): `on` (default) or `off`. */
  SHEDDING?: string;
  /** Lowest log level written: debug, info (default), warn, error. */
  LOG_LEVEL?: string;
  /** Share (0..1, default 1) of `ok` request lines written; error lines are always written. */
  LOG_SAMPLE_RATE?: string;
  /** Base URL of the mail API (Resend's shape, workers/shared/mail.ts); default https://api.resend.com. */
  MAIL_API_URL?: string;
  /** Secret. The mail API's key; unset = no mail is sent (self-serve sign-up is unavailable). */
  MAIL_API_KEY?: string;
  /** The sender of the portal's mail: `portal@example.com` or `Example API <portal@example.com>`. */
  MAIL_FROM?: string;
  /** The plan (id or name) self-serve sign-ups start on; unset = sign-up is off. */
  PORTAL_SIGNUP_PLAN?: string;
  /** The operator's OpenAPI document for the portal's Docs: an https URL or a path on ORIGIN_URL. Unset = none published. */
  PORTAL_OPENAPI_URL?: string;
  /** Development only: `true` lets webhook endpoints be http:// and on localhost/127.0.0.1/::1. Default false. */
  WEBHOOK_ALLOW_LOCALHOST?: string;
  /** Days raw usage events are kept (default 90). */
  RETENTION_USAGE_EVENTS_DAYS?: string;
  /** Months hourly and daily rollups are kept (default 25). */
  RETENTION_ROLLUPS_MONTHS?: string;
  /** Days the request audit is kept (default 365). */
  RETENTION_REQUEST_AUDIT_DAYS?: string;
  /** Days the action audit (admin, tenant, portal, console changes) is kept (default 2557, 7 years). */
  RETENTION_ACTION_AUDIT_DAYS?: string;
  /** Days webhook events, deliveries and attempts are kept (default 30). */
  RETENTION_WEBHOOK_DAYS?: string;
}

/** Milliseconds spent per step of the proxy chain, for `Server-Timing` and the request log line. */
export interface Timings {
  auth?: number;
  admit?: number;
  origin?: number;
}

/** The parsed configuration, as the rest of the Worker reads it (`c.var.config`). */
export interface Config {
  originUrl: string;
  sandboxOriginUrl: string;
  /** Default time to the origin's response headers; a route may set its own `timeoutMs`. */
  originTimeoutMs: number;
  maxBodyBytes: number;
  /** Longest prefix first. */
  routes: Route[];
  /** Lease mode: the lifetime of one lease, in ms (10–1000). */
  leaseMs: number;
  stripeMeterEventName: string;
  /** Seconds after an hour ends before its usage is reported to Stripe. */
  stripeReportLatenessS: number;
  /** The Stripe webhook signing secret; null = not configured. */
  stripeWebhookSecret: string | null;
  /** Dunning: seconds from a failed payment until a past-due tenant is refused with 402. */
  billingGracePeriodS: number;
  logLevel: LogLevel;
  /** Share of `ok` request lines written (0..1); error lines are always written. */
  logSampleRate: number;
  /** The mail API (workers/shared/mail.ts); null when MAIL_API_KEY or MAIL_FROM is unset: no mail is sent. */
  mail: { apiUrl: string; apiKey: string; from: string } | null;
  /** The plan (id or name) self-serve sign-ups start on (workers/web/portal/signup.tsx); null = sign-up off. */
  portalSignupPlan: string | null;
  /** Absolute URL of the operator's OpenAPI document shown in the portal's Docs; null = none published. */
  portalOpenapiUrl: string | null;
  /** Development only: webhook endpoints may be http:// and loopback (workers/events/endpoint-url.ts). */
  webhookAllowLocalhost: boolean;
  /** Fair shedding (workers/edge/shed.ts): tenants over their share of a degraded origin get 503 `origin_overloaded`. */
  shedding: boolean;
  /** How long each kind of record is kept; the cron prunes older rows in bounded batches. */
  retention: {
    usageEventsDays: number;
    rollupsMonths: number;
    requestAuditDays: number;
    actionAuditDays: number;
    webhookDays: number;
  };
}

/** A signed-in web page's session (workers/web/session.ts) and the CSRF value its forms carry. */
export interface ActiveSession {
  session: WebSession;
  csrf: string;
}

export interface Variables {
  requestId: string;
  startedAt: number;
  /** The parsed vars (workers/config.ts), set before anything else reads them. */
  config: Config;
  timings: Timings;
  /** Byte counts of a proxied request, settled when its bodies are done (the request log line waits). */
  bytes?: { in: Promise<number>; out: Promise<number> };
  /** The problem code `app.onError` answered with. */
  problemCode?: string;
  auth: AuthContext;
  route: Route;
  /** The body, when admission had to read it to fingerprint an Idempotency-Key request. */
  requestBody?: ArrayBuffer;
  /** Set when admitted; `leaseToken` when the response must be recorded for idempotent replay. */
  admission: {
    leaseToken: string | null;
    idempotencyKey: string | null;
    admittedAt: number;
    /** The prepaid credits the request holds, released if it turns out not billable. */
    creditHoldId?: string | null;
    /** The in-flight slot held at the tenant object (fair shedding), released after the response. */
    slotId?: string | null;
  };
  /** Set by `shed` while the route's origin is degraded: the slot admission asks the tenant object for. */
  slot?: SlotRequest;
  /** The tenant's current usage, when the tenant door already read it for `GET /gateway/v1/usage`. */
  tenantUsage?: CurrentUsage;
  /** A signed-in portal or console page: its session and the CSRF value its forms carry (workers/web/session.ts). */
  web?: ActiveSession;
  /** What a changing request did, for the audit trail: set by its handler (workers/audit/detail.ts); a list when it did several things. */
  audit?: AuditDetail | AuditDetail[];
  /**
   * The request audit log's state for an authenticated request (workers/edge/request-audit.ts):
   * `pending` until the proxy meters it (`metered`: its usage event is its audit entry).
   */
  requestLog?: "pending" | "metered";
  /** Set by the `database` middleware on admin and tenant API routes only — never on the proxy path. */
  db: Db;
}

export interface AppEnv {
  Bindings: Bindings;
  Variables: Variables;
}

/**
 * The Worker's configuration: every var (and the secrets the request path needs) parsed ONCE per
 * isolate with one zod schema. A bad value never degrades silently (`MAX_BODY_BYTES=10MB` used to
 * become NaN and switch every body limit off; a bad `ORIGIN_TIMEOUT_MS` made every request a 504):
 * the `config` middleware answers every request 503 `misconfigured`, naming the var, and logs it once.
 * `npm run check:config` (scripts/check-config.ts) runs the same schema on wrangler.toml before a
 * deploy, and `npm start` before it boots.
 *
 * Hot path: a parsed config is cached per env object (a WeakMap lookup per request) and, for a new
 * env object, by the text of its vars — so a request never re-parses JSON or runs zod.
 */
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { RouteTableSchema } from "./edge/route-table";
import type { AppEnv, Bindings, Config } from "./env";
import { GatewayError } from "./errors";
import { type LogLevel, log, setLogLevel, setLogSampleRate } from "./log";

export const DEFAULT_ORIGIN_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
export const DEFAULT_METER_EVENT_NAME = "gateway_units";
/** How long after an hour ends its usage is reported to Stripe (late units become a delta). */
export const DEFAULT_REPORT_LATENESS_S = 600;
/** Lease mode: how long an isolate admits from one lease (durable-objects/lease.ts caps it at 1 s). */
export const DEFAULT_LEASE_MS = 1_000;
/** Dunning: how long a past-due tenant's requests still pass before 402 (7 days). */
export const DEFAULT_GRACE_PERIOD_S = 7 * 86_400;
/** The mail API's base URL when `MAIL_API_URL` is unset: Resend's (workers/shared/mail.ts). */
export const DEFAULT_MAIL_API_URL = "https://api.resend.com";
/** Retention defaults (README "Retention"): raw usage 90 days, rollups 25 months, request audit 1 year, action audit 7 years, webhook logs 30 days. */
export const DEFAULT_RETENTION = {
  usageEventsDays: 90,
  rollupsMonths: 25,
  requestAuditDays: 365,
  actionAuditDays: 2557,
  webhookDays: 30,
} as const;

/** Vars in wrangler.toml may be strings or (TOML) numbers; both are accepted where a number is meant. */
const scalar = z.union([z.string(), z.number()]);

/** A whole number within bounds, or `fallback` when the var is unset. Never NaN, never partial ("10MB"). */
function wholeNumber(rule: string, min: number, max: number, fallback: number) {
  return scalar.optional().transform((value, ctx) => {
    if (value === undefined) return fallback;
    const n = typeof value === "number" ? value : /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      ctx.addIssue({ code: "custom", message: rule });
      return z.NEVER;
    }
    return n;
  });
}

const httpUrl = (what: string) =>
  z
    .string({ error: `is required (${what})` })
    .pipe(z.url({ protocol: /^https?$/, error: `must be an absolute http(s) URL (${what})` }));

/** An optional var where an empty string means unset (a blanked `--var` or dashboard field). */
const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((value) => (value === "" ? undefined : value), schema.optional());

/** `portal@example.com` or `Example API <portal@example.com>`: what a mail API takes as `from`. */
const MAIL_FROM = /^(?:[^<>\r\n"]{1,100} <[^<>\s@]+@[^<>\s@]+\.[^<>\s@]+>|[^<>\s@]+@[^<>\s@]+\.[^<>\s@]+)$/;
/** Whether `value` is a URL, or a path on one (the runtime's types lack `URL.canParse`). */
function parsesAsUrl(value: string): boolean {
  try {
    new URL(value, "https://origin.invalid");
    return true;
  } catch {
    return false;
  }
}

const LOG_LEVELS = ["debug", "info", "warn", "error"] as const satisfies readonly LogLevel[];

/** The vars, as `[vars]` in wrangler.toml (or `--var`) give them. */
export const VarsSchema = z.object({
  ORIGIN_URL: httpUrl("the origin for live keys"),
  SANDBOX_ORIGIN_URL: httpUrl("the origin for test keys"),
  ORIGIN_TIMEOUT_MS: wholeNumber(
    "must be a whole number of milliseconds from 1 to 900000 (e.g. 30000)",
    1,
    900_000,
    DEFAULT_ORIGIN_TIMEOUT_MS,
  ),
  MAX_BODY_BYTES: wholeNumber(
    "must be a whole number of bytes from 1 to 1073741824 (e.g. 10485760 for 10 MiB)",
    1,
    1024 * 1024 * 1024,
    DEFAULT_MAX_BODY_BYTES,
  ),
  ROUTES: RouteTableSchema,
  LEASE_MS: wholeNumber(
    "must be a whole number of milliseconds from 10 to 1000 (e.g. 1000)",
    10,
    1_000,
    DEFAULT_LEASE_MS,
  ),
  STRIPE_METER_EVENT_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,100}$/, "must be 1-100 letters, digits or _ . : -")
    .default(DEFAULT_METER_EVENT_NAME),
  STRIPE_REPORT_LATENESS_S: wholeNumber(
    "must be a whole number of seconds from 0 to 86400 (e.g. 600)",
    0,
    86_400,
    DEFAULT_REPORT_LATENESS_S,
  ),
  BILLING_GRACE_PERIOD_S: wholeNumber(
    "must be a whole number of seconds from 0 to 7776000 (90 days; e.g. 604800)",
    0,
    90 * 86_400,
    DEFAULT_GRACE_PERIOD_S,
  ),
  STRIPE_API_URL: z.url({ protocol: /^https?$/, error: "must be an absolute http(s) URL" }).optional(),
  MAIL_API_URL: optional(
    z.url({ protocol: /^https?$/, error: "must be an absolute http(s) URL (the mail API's base URL)" }),
  ),
  MAIL_FROM: optional(
    z
      .string()
      .regex(MAIL_FROM, "must be an address or a name and an address, e.g. Example API <portal@example.com>"),
  ),
  PORTAL_SIGNUP_PLAN: optional(
    z
      .string()
      .max(64, "must be a plan id or name (at most 64 characters)")
      .regex(/^[\x20-\x7e]+$/, "must be a plan id or name (printable ASCII)"),
  ),
  PORTAL_OPENAPI_URL: z
    .string()
    .refine(
      (v) => (/^\/(?!\/)\S*$/.test(v) || /^https:\/\/\S+$/.test(v)) && parsesAsUrl(v),
      "must be an https URL or a path on the origin starting with / (e.g. /openapi.json)",
    )
    .optional(),
  WEBHOOK_ALLOW_LOCALHOST: z
    .enum(["true", "false"], { error: "must be true or false (true only for local development)" })
    .default("false"),
  RETENTION_USAGE_EVENTS_DAYS: wholeNumber(
    "must be a whole number of days from 1 to 36500 (e.g. 90)",
    1,
    36_500,
    DEFAULT_RETENTION.usageEventsDays,
  ),
  RETENTION_ROLLUPS_MONTHS: wholeNumber(
    "must be a whole number of months from 1 to 1200 (e.g. 25)",
    1,
    1200,
    DEFAULT_RETENTION.rollupsMonths,
  ),
  RETENTION_REQUEST_AUDIT_DAYS: wholeNumber(
    "must be a whole number of days from 1 to 36500 (e.g. 365)",
    1,
    36_500,
    DEFAULT_RETENTION.requestAuditDays,
  ),
  RETENTION_ACTION_AUDIT_DAYS: wholeNumber(
    "must be a whole number of days from 1 to 36500 (e.g. 2557)",
    1,
    36_500,
    DEFAULT_RETENTION.actionAuditDays,
  ),
  RETENTION_WEBHOOK_DAYS: wholeNumber(
    "must be a whole number of days from 1 to 36500 (e.g. 30)",
    1,
    36_500,
    DEFAULT_RETENTION.webhookDays,
  ),
  SHEDDING: z
    .enum(["on", "off"], { error: "must be on or off (fair shedding when a route's origin degrades)" })
    .default("on"),
  LOG_LEVEL: z.enum(LOG_LEVELS, { error: "must be one of debug, info, warn, error" }).default("info"),
  LOG_SAMPLE_RATE: scalar.optional().transform((value, ctx) => {
    if (value === undefined) return 1;
    const n =
      typeof value === "number" ? value : /^(0(\.\d+)?|1(\.0+)?|\.\d+)$/.test(value) ? Number(value) : -1;
    if (!(n >= 0 && n <= 1)) {
      ctx.addIssue({ code: "custom", message: "must be a number from 0 to 1 (e.g. 0.1)" });
      return z.NEVER;
    }
    return n;
  }),
});

/** The secrets the request path cannot work without (`wrangler secret put`), and the webhook secret. */
export const SecretsSchema = z.object({
  CLAIMS_SECRET: z
    .string({ error: "is required (the HMAC key of the origin claims)" })
    .min(16, "must be at least 16 characters"),
  DATABASE_URL: z
    .string({ error: "is required (the Postgres connection string)" })
    .regex(/^postgres(ql)?:\/\/\S+$/, "must be a postgres:// connection string"),
  /** Optional: without it the Stripe webhook endpoint answers 503 (workers/billing/webhooks/receive.ts). */
  STRIPE_WEBHOOK_SECRET: z
    .string()
    .regex(/^whsec_\S+$/, "must be the endpoint's signing secret, starting with whsec_")
    .optional(),
  /** Optional: without it (or without MAIL_FROM) no mail is sent and self-serve sign-up says it is unavailable. */
  MAIL_API_KEY: optional(z.string().regex(/^\S{1,500}$/, "must be the mail API's key (no spaces)")),
});

export const ConfigSchema = VarsSchema.extend(SecretsSchema.shape);

/** Every var and secret name the schema reads: the cache key of a parsed config. */
export const CONFIG_KEYS = Object.keys(ConfigSchema.shape) as (keyof z.input<typeof ConfigSchema>)[];

export type ConfigResult = { ok: true; config: Config } | { ok: false; message: string };

/**
 * One line per problem, naming the var: `MAX_BODY_BYTES: must be a whole number …`, and for the
 * route table the entry and field too (`ROUTES[0].prefix: …`). Values are not echoed: the message
 * is shown to every client while the gateway is misconfigured.
 */
export function describeConfigError(error: z.ZodError): string {
  const lines = error.issues.map((issue) => {
    const [name, ...rest] = issue.path;
    const where = rest.map((p) => (typeof p === "number" ? `[${p}]` : `.${String(p)}`)).join("");
    return `${String(name)}${where}: ${issue.message}`;
  });
  return `The gateway is misconfigured: ${lines.join("; ")}.`;
}

/**
 * Parses raw vars and secrets (no caching): the Worker, `check:config` and `npm start` share it.
 * `secrets: false` checks the vars alone (a deploy check, where secrets live in Cloudflare only).
 */
export function parseConfig(raw: Record<string, unknown>, options: { secrets?: boolean } = {}): ConfigResult {
  if (options.secrets === false) {
    const vars = VarsSchema.safeParse(raw);
    if (!vars.success) return { ok: false, message: describeConfigError(vars.error) };
    raw = { ...raw, CLAIMS_SECRET: "x".repeat(16), DATABASE_URL: "postgres://unchecked" };
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, message: describeConfigError(parsed.error) };
  const v = parsed.data;
  return {
    ok: true,
    config: {
      originUrl: v.ORIGIN_URL,
      sandboxOriginUrl: v.SANDBOX_ORIGIN_URL,
      originTimeoutMs: v.ORIGIN_TIMEOUT_MS,
      maxBodyBytes: v.MAX_BODY_BYTES,
      routes: v.ROUTES,
      leaseMs: v.LEASE_MS,
      stripeMeterEventName: v.STRIPE_METER_EVENT_NAME,
      stripeReportLatenessS: v.STRIPE_REPORT_LATENESS_S,
      stripeWebhookSecret: v.STRIPE_WEBHOOK_SECRET ?? null,
      // A path is the live origin's (`/openapi.json` → `${ORIGIN_URL}/openapi.json`'s host).
      portalOpenapiUrl: v.PORTAL_OPENAPI_URL ? new URL(v.PORTAL_OPENAPI_URL, v.ORIGIN_URL).href : null,
      billingGracePeriodS: v.BILLING_GRACE_PERIOD_S,
      logLevel: v.LOG_LEVEL,
      logSampleRate: v.LOG_SAMPLE_RATE,
      mail:
        v.MAIL_API_KEY && v.MAIL_FROM
          ? { apiUrl: v.MAIL_API_URL ?? DEFAULT_MAIL_API_URL, apiKey: v.MAIL_API_KEY, from: v.MAIL_FROM }
          : null,
      portalSignupPlan: v.PORTAL_SIGNUP_PLAN ?? null,
      webhookAllowLocalhost: v.WEBHOOK_ALLOW_LOCALHOST === "true",
      shedding: v.SHEDDING === "on",
      retention: {
        usageEventsDays: v.RETENTION_USAGE_EVENTS_DAYS,
        rollupsMonths: v.RETENTION_ROLLUPS_MONTHS,
        requestAuditDays: v.RETENTION_REQUEST_AUDIT_DAYS,
        actionAuditDays: v.RETENTION_ACTION_AUDIT_DAYS,
        webhookDays: v.RETENTION_WEBHOOK_DAYS,
      },
    },
  };
}

/**
 * Why two caches: workerd hands the same env object to every request of an isolate, so the
 * WeakMap answers almost every call; when it does not (a test with its own env, a new isolate
 * generation), the text of the vars decides whether the last parse still holds.
 */
const byEnv = new WeakMap<object, ConfigResult>();
let last: { key: string; result: ConfigResult } | undefined;

function cacheKey(env: Bindings): string {
  const values = env as unknown as Record<string, unknown>;
  return CONFIG_KEYS.map((k) => {
    const value = values[k];
    return typeof value === "string" ? value : (JSON.stringify(value) ?? "\u0001");
  }).join("\u0000");
}

/** The env's parsed config, parsed at most once per distinct set of values; a bad one is logged once. */
export function loadConfig(env: Bindings): ConfigResult {
  const hit = byEnv.get(env);
  if (hit) return hit;
  const key = cacheKey(env);
  let result = last?.key === key ? last.result : undefined;
  if (!result) {
    result = parseConfig(env as unknown as Record<string, unknown>);
    last = { key, result };
    if (!result.ok) log.error("misconfigured", { code: "misconfigured", error: result.message });
  }
  byEnv.set(env, result);
  return result;
}

/** The env's config, or the 503 `misconfigured` error to throw. */
export function configOf(env: Bindings): Config {
  const result = loadConfig(env);
  if (!result.ok) throw new GatewayError("misconfigured", result.message);
  return result.config;
}

/**
 * First after the request id: every request — proxy, admin, tenant API, health — gets the parsed
 * config in `c.var.config`, or a 503 `misconfigured` naming the bad var. Also applies the log
 * level and sampling of this config to the isolate's logger (two comparisons when unchanged).
 */
export const config = () =>
  createMiddleware<AppEnv>(async function config(c, next) {
    const parsed = configOf(c.env);
    setLogLevel(parsed.logLevel);
    setLogSampleRate(parsed.logSampleRate);
    c.set("config", parsed);
    await next();
  });

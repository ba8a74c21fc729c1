/**
 * TenantLimiter: one SQLite-backed Durable Object per tenant (`TENANT.getByName(tenantId)`).
 * Every admitted request makes one `admit` call, which decides atomically — revocation, tenant
 * status, idempotency state, token buckets (tenant and key) and daily/monthly quotas — and
 * charges every window or none. `admit` has no `await`: it runs start to finish without another
 * request interleaving, which is what makes the limits exact under any concurrency.
 *
 * State lives in SQLite, so it survives eviction and restarts. The only alarm is garbage
 * collection of expired idempotency records and key blocks.
 */
import { DurableObject } from "cloudflare:workers";
import type { Bindings } from "../workers/env";
import {
  decide as decideIdempotency,
  type IdempotencyRecord,
  MAX_RECORDED_BODY_BYTES,
  RETENTION_MS,
  type RecordedResponse,
} from "./idempotency";
import type { BucketState, LimitState, QuotaState, TenantConfig } from "./limits";
import { currentUsage, periodEnd, type QuotaWindow, WINDOW_SECONDS } from "./quota";
import {
  type BucketState as Bucket,
  type BucketLimit,
  refill,
  secondsUntil,
  secondsUntilFull,
  windowSeconds,
} from "./token-bucket";

export interface AdmitInput {
  keyId: string;
  /** The key's own bucket, if it has one. */
  keyLimit: BucketLimit | null;
  /** Units this request costs (the route's cost). */
  cost: number;
  /** The edge's view of the tenant (from KV); used if newer than what the object holds. */
  config: TenantConfig;
  idempotency: { key: string; fingerprint: string; leaseMs: number } | null;
}

export type AdmitResult =
  | { outcome: "admitted"; limits: LimitState; leaseToken: string | null; admittedAt: number }
  | { outcome: "rate_limited" | "quota_exceeded"; retryAfter: number; limits: LimitState }
  | { outcome: "replay"; response: RecordedResponse; limits: LimitState }
  | {
      outcome:
        | "revoked"
        | "expired"
        | "suspended"
        | "past_due"
        | "idempotency_in_flight"
        | "idempotency_mismatch";
    };

/** A request that can never fit (cost above capacity) is told to come back after a day, not never. */
const MAX_RETRY_AFTER_S = 86_400;
/** Key blocks are kept until KV and isolate caches have long converged on the key's end. */
const KEY_BLOCK_RETENTION_MS = 2 * 86_400_000;
/** The admission ledger (what reconciliation checks usage rows against) is kept this long. */
const LEDGER_RETENTION_MS = 400 * 86_400_000;
const HOUR_MS = 3_600_000;

/** Usage of the current period per window; `limit`/`remaining` are null when the window has no quota. */
export interface CurrentUsage {
  burst: BucketState;
  daily: { used: number; limit: number | null; remaining: number | null; resetAt: number };
  monthly: { used: number; limit: number | null; remaining: number | null; resetAt: number };
}

/** One hour of admitted requests, as counted at admission. */
export interface LedgerHour {
  /** Epoch ms of the hour's start. */
  hour: number;
  requests: number;
  units: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS config (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_at INTEGER NOT NULL, capacity INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS quotas (name TEXT PRIMARY KEY, period TEXT NOT NULL, used INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL, lease_token TEXT,
    lease_until INTEGER NOT NULL, expires_at INTEGER NOT NULL, status INTEGER, headers TEXT, body BLOB);
  CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
  CREATE TABLE IF NOT EXISTS key_blocks (key_id TEXT PRIMARY KEY, reason TEXT NOT NULL, not_after INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS ledger (hour INTEGER PRIMARY KEY, requests INTEGER NOT NULL, units INTEGER NOT NULL);
`;

type Row = Record<string, SqlStorageValue>;

export class TenantLimiter extends DurableObject<Bindings> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: Bindings) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(SCHEMA);
    });
  }

  /** The one call per admitted request. */
  async admit(input: AdmitInput): Promise<AdmitResult> {
    const result = this.decide(input, Date.now());
    if (result.outcome === "admitted" && result.leaseToken) await this.scheduleCleanup();
    return result;
  }

  /** `admit` at an explicit time: the whole decision, synchronous. Tests drive the clock through here. */
  decide(input: AdmitInput, now: number): AdmitResult {
    const block = this.one("SELECT reason, not_after FROM key_blocks WHERE key_id = ?", input.keyId);
    if (block && (block.not_after as number) <= now)
      return { outcome: block.reason as "revoked" | "expired" };

    const config = this.adoptConfig(input.config);
    if (config.status !== "active") return { outcome: config.status };

    let idempotency: IdempotencyRecord | null = null;
    if (input.idempotency) {
      idempotency = this.readIdempotency(input.idempotency.key);
      const decision = decideIdempotency(idempotency, input.idempotency.fingerprint, now);
      if (decision.kind === "mismatch") return { outcome: "idempotency_mismatch" };
      if (decision.kind === "in_flight") return { outcome: "idempotency_in_flight" };
      if (decision.kind === "replay") {
        return {
          outcome: "replay",
          response: decision.response,
          limits: snapshot(this.load(config, input, now)),
        };
      }
    }

    const windows = this.load(config, input, now);
    const waits: { outcome: "rate_limited" | "quota_exceeded"; seconds: number }[] = [];
    for (const b of windows.buckets) {
      const seconds = secondsUntil(b.limit, b.state, input.cost);
      if (seconds > 0) waits.push({ outcome: "rate_limited", seconds });
    }
    for (const q of windows.quotas) {
      if (q.quota !== null && q.usage.used + input.cost > q.quota)
        waits.push({ outcome: "quota_exceeded", seconds: Math.ceil((q.end - now) / 1000) });
    }
    if (waits.length > 0) {
      const longest = waits.reduce((a, b) => (b.seconds > a.seconds ? b : a));
      return {
        outcome: waits.some((w) => w.outcome === "quota_exceeded") ? "quota_exceeded" : "rate_limited",
        retryAfter: Math.min(MAX_RETRY_AFTER_S, Math.max(1, longest.seconds)),
        limits: snapshot(windows),
      };
    }

    let leaseToken: string | null = null;
    this.ctx.storage.transactionSync(() => {
      for (const b of windows.buckets) {
        b.state.tokens -= input.cost;
        this.sql.exec(
          "INSERT INTO buckets (name, tokens, updated_at, capacity) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at, capacity = excluded.capacity",
          b.name,
          b.state.tokens,
          b.state.updatedAt,
          b.state.capacity,
        );
      }
      for (const q of windows.quotas) {
        q.usage.used += input.cost;
        this.sql.exec(
          "INSERT INTO quotas (name, period, used) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET period = excluded.period, used = excluded.used",
          q.name,
          q.usage.period,
          q.usage.used,
        );
      }
      this.sql.exec(
        "INSERT INTO ledger (hour, requests, units) VALUES (?, 1, ?) ON CONFLICT (hour) DO UPDATE SET requests = requests + 1, units = units + excluded.units",
        Math.floor(now / HOUR_MS) * HOUR_MS,
        input.cost,
      );
      if (input.idempotency) {
        leaseToken = crypto.randomUUID();
        this.sql.exec(
          "INSERT OR REPLACE INTO idempotency (key, fingerprint, state, lease_token, lease_until, expires_at) VALUES (?, ?, 'in_flight', ?, ?, ?)",
          input.idempotency.key,
          input.idempotency.fingerprint,
          leaseToken,
          now + input.idempotency.leaseMs,
          now + RETENTION_MS,
        );
      }
    });
    return { outcome: "admitted", limits: snapshot(windows), leaseToken, admittedAt: now };
  }

  /**
   * Records the response of an idempotent request (replayed to later retries), or — with
   * `response` null — releases the key so a retry runs again (origin failure, client gone,
   * body too large to record). Only the holder of the lease can do either.
   */
  async complete(key: string, leaseToken: string, response: RecordedResponse | null): Promise<void> {
    if (response === null || response.body.byteLength > MAX_RECORDED_BODY_BYTES) {
      this.sql.exec(
        "DELETE FROM idempotency WHERE key = ? AND lease_token = ? AND state = 'in_flight'",
        key,
        leaseToken,
      );
      return;
    }
    this.sql.exec(
      "UPDATE idempotency SET state = 'done', status = ?, headers = ?, body = ?, lease_token = NULL WHERE key = ? AND lease_token = ? AND state = 'in_flight'",
      response.status,
      JSON.stringify(response.headers),
      response.body,
      key,
      leaseToken,
    );
  }

  /** Applies a tenant change from the admin API; the next request sees it. */
  async configure(config: TenantConfig): Promise<void> {
    this.adoptConfig(config);
  }

  /** Refuses a key from `notAfter` on (revocation: now; rotation: end of the grace period). */
  async blockKey(keyId: string, reason: "revoked" | "expired", notAfter: number): Promise<void> {
    this.sql.exec(
      "INSERT INTO key_blocks (key_id, reason, not_after) VALUES (?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET reason = excluded.reason, not_after = min(key_blocks.not_after, excluded.not_after)",
      keyId,
      reason,
      notAfter,
    );
    await this.scheduleCleanup();
  }

  /** The current period's usage in every window, without charging anything (the usage API). */
  async peek(config: TenantConfig): Promise<CurrentUsage> {
    const now = Date.now();
    const windows = this.load(
      this.adoptConfig(config),
      { keyId: "", keyLimit: null, cost: 0, config, idempotency: null },
      now,
    );
    const quota = (name: QuotaWindow) => {
      const q = windows.quotas.find((x) => x.name === name) as Windows["quotas"][number];
      return {
        used: q.usage.used,
        limit: q.quota,
        remaining: q.quota === null ? null : Math.max(0, q.quota - q.usage.used),
        resetAt: Math.floor(q.end / 1000),
      };
    };
    return { burst: snapshot(windows).burst, daily: quota("daily"), monthly: quota("monthly") };
  }

  /** Admitted requests and units per hour in [from, to): the edge's side of reconciliation. */
  async ledger(from: number, to: number): Promise<LedgerHour[]> {
    return this.sql
      .exec<{ hour: number; requests: number; units: number }>(
        "SELECT hour, requests, units FROM ledger WHERE hour >= ? AND hour < ? ORDER BY hour",
        from,
        to,
      )
      .toArray();
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    this.sql.exec("DELETE FROM ledger WHERE hour < ?", now - LEDGER_RETENTION_MS);
    this.sql.exec("DELETE FROM idempotency WHERE expires_at <= ?", now);
    this.sql.exec("DELETE FROM key_blocks WHERE not_after <= ?", now - KEY_BLOCK_RETENTION_MS);
    await this.scheduleCleanup(true);
  }

  private async scheduleCleanup(force = false): Promise<void> {
    if (!force && (await this.ctx.storage.getAlarm()) !== null) return;
    const next = this.one(
      `SELECT min(t) AS t FROM (SELECT min(expires_at) AS t FROM idempotency
         UNION ALL SELECT min(not_after) + ${KEY_BLOCK_RETENTION_MS} FROM key_blocks)`,
    );
    if (next?.t != null) await this.ctx.storage.setAlarm(next.t as number);
  }

  private one(query: string, ...bindings: SqlStorageValue[]): Row | undefined {
    return this.sql.exec<Row>(query, ...bindings).toArray()[0];
  }

  /** Keeps whichever config is newer: the stored one, or the one the request (or admin) brought. */
  private adoptConfig(incoming: TenantConfig): TenantConfig {
    const stored = this.one("SELECT version, body FROM config WHERE id = 1");
    if (stored && (stored.version as number) >= incoming.version) return JSON.parse(stored.body as string);
    this.sql.exec(
      "INSERT INTO config (id, version, body) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body",
      incoming.version,
      JSON.stringify(incoming),
    );
    return incoming;
  }

  private readIdempotency(key: string): IdempotencyRecord | null {
    const row = this.one("SELECT * FROM idempotency WHERE key = ?", key);
    if (!row) return null;
    return {
      fingerprint: row.fingerprint as string,
      state: row.state as "in_flight" | "done",
      leaseUntil: row.lease_until as number,
      expiresAt: row.expires_at as number,
      response:
        row.state === "done"
          ? {
              status: row.status as number,
              headers: JSON.parse(row.headers as string),
              body: row.body as ArrayBuffer,
            }
          : null,
    };
  }

  /** Every window as of `now`: buckets refilled, quotas rolled over. Nothing is written. */
  private load(config: TenantConfig, input: AdmitInput, now: number): Windows {
    const bucketLimits = [
      { name: "tenant", limit: config.limits as BucketLimit },
      ...(input.keyLimit ? [{ name: `key:${input.keyId}`, limit: input.keyLimit }] : []),
    ];
    const buckets = bucketLimits.map(({ name, limit }) => {
      const row = this.one("SELECT tokens, updated_at, capacity FROM buckets WHERE name = ?", name);
      const stored = row
        ? {
            tokens: row.tokens as number,
            updatedAt: row.updated_at as number,
            capacity: row.capacity as number,
          }
        : null;
      return { name, limit, state: refill(limit, stored, now) };
    });
    // Usage is counted in both periods even without a quota, so a quota set mid-period (or the
    // usage API) sees the period's real usage.
    const quotas = (["daily", "monthly"] as const).map((name) => {
      const quota = name === "daily" ? config.limits.dailyQuota : config.limits.monthlyQuota;
      const row = this.one("SELECT period, used FROM quotas WHERE name = ?", name);
      const stored = row ? { period: row.period as string, used: row.used as number } : null;
      return { name, quota, usage: currentUsage(name, stored, now), end: periodEnd(name, now) };
    });
    return { buckets, quotas };
  }
}

interface Windows {
  buckets: { name: string; limit: BucketLimit; state: Bucket }[];
  quotas: { name: QuotaWindow; quota: number | null; usage: { period: string; used: number }; end: number }[];
}

/** The header view of the windows. */
function snapshot({ buckets, quotas }: Windows): LimitState {
  const bucketState = (b: Windows["buckets"][number]): BucketState => ({
    limit: b.limit.burstCapacity,
    windowSeconds: windowSeconds(b.limit),
    remaining: Math.max(0, Math.floor(b.state.tokens)),
    resetSeconds: secondsUntilFull(b.limit, b.state),
  });
  const quotaState = (name: QuotaWindow): QuotaState | null => {
    const q = quotas.find((x) => x.name === name);
    if (!q || q.quota === null) return null;
    return {
      limit: q.quota,
      windowSeconds: WINDOW_SECONDS[name],
      remaining: Math.max(0, q.quota - q.usage.used),
      resetAt: Math.floor(q.end / 1000),
    };
  };
  const [tenant, key] = buckets as [Windows["buckets"][number], Windows["buckets"][number]?];
  return {
    burst: bucketState(tenant),
    key: key ? bucketState(key) : null,
    daily: quotaState("daily"),
    monthly: quotaState("monthly"),
  };
}

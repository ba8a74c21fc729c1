/**
 * TenantLimiter: one SQLite-backed Durable Object per tenant (`TENANT.getByName(tenantId)`), the
 * RPC shell around the pure admission decision (admission.ts). Every request through a tenant door
 * makes one `admit` call: the proxy's (revocation and key state, tenant status, idempotency, token
 * buckets and quotas, charged all or nothing) and the tenant API's (the same key and status checks,
 * then the management bucket). `admit` decides and charges with no `await` between reading state and
 * charging it: no other request interleaves, which is what makes the limits exact under any
 * concurrency. Its writes are group-committed (group-commit.ts): one SQLite commit for all the
 * admissions decided meanwhile, each answering only once that commit succeeded.
 *
 * A prepaid tenant's credit balance lives here too (credits.ts): charged by `admit` in the same
 * decision as the limits, given back by `releaseCredits`, topped up by `grantCredits`.
 *
 * Usage alerts are decided here as well (thresholds.ts): the admission that takes a quota or the
 * credits since the last top-up across 80 % or 100 % records the threshold as fired (once per
 * threshold and period) and puts a `usage.threshold.reached` event in an outbox table, in the same
 * transaction as its charges. The alarm sends the outbox to the events queue (binding
 * EVENTS_QUEUE) and deletes what the queue accepted; a failed send keeps the rows and retries with
 * backoff, so an alert is never lost and never decided twice.
 *
 * Fair shedding's in-flight slots (concurrency.ts) are the one exception to SQLite: while a route's
 * origin is degraded, `admit` takes a slot within the tenant's share or refuses `overloaded` before
 * charging anything; `releaseSlot` ends it after the response. Slots live in memory (each lapses
 * within one origin timeout).
 *
 * State lives in SQLite, so it survives eviction and restarts. The alarm's duties: sending the
 * outbox, and garbage collection of expired idempotency records, dead keys and old ledger hours.
 */
import { DurableObject } from "cloudflare:workers";
import {
  type AdmissionStore,
  type AdmitInput,
  type AdmitResult,
  type CurrentUsage,
  decideAdmission,
  mergeKeyState,
  periodUsage,
} from "./admission";
import { Slots } from "./concurrency";
import {
  balanceAfterGrant,
  type CreditBalance,
  type CreditGrant,
  type CreditHour,
  type GrantResult,
} from "./credits";
import { PendingWrites } from "./group-commit";
import { type IdempotencyRecord, MAX_RECORDED_BODY_BYTES, type RecordedResponse } from "./idempotency";
import {
  decideLease,
  LAPSE_GRACE_MS,
  type LeaseInput,
  type LeaseReport,
  type LeaseResult,
  lifetime,
  refund,
  refundTokens,
  settle,
} from "./lease";
import type { KeyState, TenantConfig } from "./limits";
import type { QuotaUsage } from "./quota";
import {
  type Crossing,
  creditGauge,
  crossings,
  type Gauge,
  type OutboxEnv,
  type QueuedEvent,
  quotaGauge,
  type ThresholdEvent,
  thresholdEvent,
  thresholdEventId,
} from "./thresholds";
import type { BucketState as Bucket } from "./token-bucket";

export type { AdmitInput, AdmitResult, CurrentUsage, PastDue } from "./admission";
export type { CreditBalance, CreditGrant, CreditHour, GrantResult } from "./credits";
export type { Lease, LeaseInput, LeaseReport, LeaseResult } from "./lease";

/** Dead keys are kept until KV and isolate caches have long converged on the key's end. */
const KEY_RETENTION_MS = 2 * 86_400_000;
/** The admission ledger (what reconciliation checks usage rows against) is kept this long. */
const LEDGER_RETENTION_MS = 400 * 86_400_000;
const HOUR_MS = 3_600_000;
/** Events per `events` message: a queue message holds ≤ 128 KB, and one event is ~300 bytes. */
const OUTBOX_BATCH = 100;
const MAX_OUTBOX_RETRY_MS = 300_000;

/** Delay before the next outbox send after `failures` consecutive failed ones: 1 s, 2 s, 4 s … capped at 5 min. */
export function outboxRetryDelayMs(failures: number): number {
  return Math.min(MAX_OUTBOX_RETRY_MS, 1_000 * 2 ** Math.max(0, failures - 1));
}

/** One hour of leases whose holder never reported them (lease.ts): their units stay charged. */
export interface LapsedHour {
  /** Epoch ms of the hour the leases were granted in. */
  hour: number;
  leases: number;
  units: number;
}

/** One hour of admitted requests, as counted at admission. */
export interface LedgerHour {
  /** Epoch ms of the hour's start. */
  hour: number;
  requests: number;
  units: number;
}

/** The tenant object's side of reconciliation: its ledger, and the leases it lost count of. */
export interface ReconciliationHours {
  admitted: LedgerHour[];
  lapsed: LapsedHour[];
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS config (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_at INTEGER NOT NULL, capacity INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS quotas (name TEXT PRIMARY KEY, period TEXT NOT NULL, used INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, state TEXT NOT NULL, lease_token TEXT,
    lease_until INTEGER NOT NULL, expires_at INTEGER NOT NULL, status INTEGER, headers TEXT, body BLOB);
  CREATE INDEX IF NOT EXISTS idempotency_expiry ON idempotency (expires_at);
  CREATE TABLE IF NOT EXISTS keys (key_id TEXT PRIMARY KEY, version INTEGER NOT NULL, end_at INTEGER, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS ledger (hour INTEGER PRIMARY KEY, requests INTEGER NOT NULL, units INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS credits (id INTEGER PRIMARY KEY CHECK (id = 1), balance INTEGER NOT NULL CHECK (balance >= 0));
  CREATE TABLE IF NOT EXISTS credit_grants (id TEXT PRIMARY KEY, units INTEGER NOT NULL, at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS credit_holds (id TEXT PRIMARY KEY, units INTEGER NOT NULL, hour INTEGER NOT NULL, expires_at INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS credit_holds_expiry ON credit_holds (expires_at);
  CREATE TABLE IF NOT EXISTS credit_hours (hour INTEGER PRIMARY KEY, granted INTEGER NOT NULL, spent INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS credit_topup (id INTEGER PRIMARY KEY CHECK (id = 1), grant_id TEXT NOT NULL, base INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS thresholds_fired (
    "window" TEXT NOT NULL, env TEXT NOT NULL, period TEXT NOT NULL, threshold INTEGER NOT NULL, fired_at INTEGER NOT NULL,
    PRIMARY KEY ("window", env, period, threshold));
  CREATE TABLE IF NOT EXISTS event_outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS outbox_retry (id INTEGER PRIMARY KEY CHECK (id = 1), failures INTEGER NOT NULL, retry_at INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS leases (
    id TEXT PRIMARY KEY, holder TEXT NOT NULL, key_id TEXT NOT NULL, units INTEGER NOT NULL,
    granted_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
  CREATE INDEX IF NOT EXISTS leases_expiry ON leases (expires_at);
  CREATE TABLE IF NOT EXISTS lease_lapses (hour INTEGER PRIMARY KEY, leases INTEGER NOT NULL, units INTEGER NOT NULL);
  CREATE TABLE IF NOT EXISTS lease_totals (id INTEGER PRIMARY KEY CHECK (id = 1), calls INTEGER NOT NULL, requests INTEGER NOT NULL);
`;

/**
 * Objects created before key records existed kept only blocks (revocation time or rotation
 * expiry): carried over as partial key records (no allowlist or limit: the edge's view applies).
 */
const MIGRATE_KEY_BLOCKS = `
  INSERT OR IGNORE INTO keys (key_id, version, end_at, body)
    SELECT key_id, 0, not_after, json_object('version', 0,
      'revokedAt', CASE WHEN reason = 'revoked' THEN not_after END,
      'expiresAt', CASE WHEN reason = 'expired' THEN not_after END)
    FROM key_blocks;
  DROP TABLE key_blocks;
`;

type Row = Record<string, SqlStorageValue>;

/** `(?, ?, ?), (?, ?, ?)`: the VALUES of a multi-row insert. */
const rows = (count: number, columns: number) =>
  Array.from({ length: count }, () => `(${Array(columns).fill("?").join(", ")})`).join(", ");

/**
 * What admission reads on every request, kept in memory once read (undefined = not read yet; null =
 * read, and absent). SQLite stays the record: every write goes to SQLite and, in the same synchronous
 * step, here; a failed transaction drops the whole cache, which is then read again from SQLite. An
 * evicted object starts empty. So a decision reads exactly what SQLite holds, without reading it.
 */
interface StateCache {
  config: TenantConfig | null | undefined;
  keys: Map<string, KeyState | null>;
  buckets: Map<string, Bucket | null>;
  quotas: Map<string, QuotaUsage | null>;
  balance: number | undefined;
}

const emptyCache = (): StateCache => ({
  config: undefined,
  keys: new Map(),
  buckets: new Map(),
  quotas: new Map(),
  balance: undefined,
});

/** Reads `map`'s entry for `name`, loading (and remembering) it on a miss. */
function cached<T>(map: Map<string, T | null>, name: string, load: () => T | null): T | null {
  const hit = map.get(name);
  if (hit !== undefined) return hit;
  const value = load();
  map.set(name, value);
  return value;
}

/**
 * Decides from its own storage alone; its one binding, EVENTS_QUEUE, only carries the outbox away
 * after the fact (it imports nothing from workers/).
 */
export class TenantLimiter extends DurableObject {
  private readonly sql: SqlStorage;
  private readonly store: AdmissionStore;
  private readonly outboxQueue: OutboxEnv["EVENTS_QUEUE"];
  private cache: StateCache = emptyCache();
  /** Admissions' writes waiting for their group commit (group-commit.ts). */
  private readonly pending = new PendingWrites();
  /** In-flight slots of requests on degraded routes (concurrency.ts): in memory, each lapses within one lease. */
  private readonly slots = new Slots();

  constructor(ctx: DurableObjectState, env: Cloudflare.Env) {
    super(ctx, env);
    // The Worker's env carries the binding (wrangler.toml); the object reads it through its own type.
    this.outboxQueue = (env as unknown as OutboxEnv).EVENTS_QUEUE;
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(SCHEMA);
      if (this.one("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'key_blocks'"))
        this.sql.exec(MIGRATE_KEY_BLOCKS);
    });
    this.store = {
      key: (keyId) =>
        cached(this.cache.keys, keyId, () => {
          const row = this.one("SELECT body FROM keys WHERE key_id = ?", keyId);
          return row ? (JSON.parse(row.body as string) as KeyState) : null;
        }),
      bucket: (name) =>
        cached(this.cache.buckets, name, () => {
          const row = this.one("SELECT tokens, updated_at, capacity FROM buckets WHERE name = ?", name);
          return row
            ? {
                tokens: row.tokens as number,
                updatedAt: row.updated_at as number,
                capacity: row.capacity as number,
              }
            : null;
        }),
      quota: (name) =>
        cached(this.cache.quotas, name, () => {
          const row = this.one("SELECT period, used FROM quotas WHERE name = ?", name);
          return row ? { period: row.period as string, used: row.used as number } : null;
        }),
      idempotency: (key) => this.readIdempotency(key),
      creditBalance: () => this.balance(),
    };
  }

  /**
   * The one call per request through a tenant door (proxy or tenant API). A plain admission's
   * charge is group-committed (group-commit.ts): it answers once the commit carrying it succeeded.
   */
  async admit(input: AdmitInput): Promise<AdmitResult> {
    let committed: Promise<void> | undefined;
    const result = this.decide(input, Date.now(), (c) => {
      committed = c;
    });
    if (committed) await committed;
    if (result.outcome === "admitted" && result.leaseToken) await this.scheduleCleanup();
    return result;
  }

  /**
   * `admit` at an explicit time: load, decide, charge — synchronous, no other call interleaves.
   * Tests drive the clock through here. With `group`, a plain admission (windows and ledger only:
   * no idempotency record, credit hold or usage alert) is charged in memory at once and its writes
   * parked for the group's commit, whose promise goes to `group`; without, everything is written
   * (with whatever was parked) before this returns.
   */
  decide(input: AdmitInput, now: number, group?: (committed: Promise<void>) => void): AdmitResult {
    const config = this.configFor(input);
    if (!config) return { outcome: "config_needed" };
    const decision = decideAdmission(input, config, this.store, now);
    if (decision.outcome !== "admitted") return decision;
    // Fair shedding: on a degraded route, a slot within the tenant's share — or refused before any charge.
    const slotId = input.slot ? crypto.randomUUID() : undefined;
    if (input.slot && slotId && !this.slots.acquire(input.slot, slotId, now))
      return { outcome: "overloaded", held: this.slots.held(input.slot.route, now) };

    const { writes } = decision;
    const env = input.env ?? "live";
    const hour = Math.floor(now / HOUR_MS) * HOUR_MS;
    const ledger = writes.ledgerUnits === null ? null : { hour, units: writes.ledgerUnits };
    // Thresholds from values the decision already has: no read unless credits were held.
    const gauges: Gauge[] = writes.quotas.map((q) => quotaGauge(q.window, q.usage, input.cost, q.quota));
    let crossed = crossings(gauges);
    let leaseToken: string | null = null;
    let creditHold: { id: string; units: number; balance: number } | null = null;
    let alerts = 0;
    if (group && !writes.idempotency && !writes.creditHold && crossed.length === 0) {
      this.cacheWindows(writes.buckets, writes.quotas);
      const parked = this.pending.add(writes.buckets, writes.quotas, ledger);
      if (parked.opened) setTimeout(() => this.commitPending(), 0);
      group(parked.committed);
    } else
      this.transaction(() => {
        this.writeWindows(writes.buckets, writes.quotas);
        if (ledger) this.countLedger(ledger.hour, 1, ledger.units);
        if (writes.idempotency) {
          leaseToken = crypto.randomUUID();
          this.sql.exec(
            "INSERT OR REPLACE INTO idempotency (key, fingerprint, state, lease_token, lease_until, expires_at) VALUES (?, ?, 'in_flight', ?, ?, ?)",
            writes.idempotency.key,
            writes.idempotency.fingerprint,
            leaseToken,
            writes.idempotency.leaseUntil,
            writes.idempotency.expiresAt,
          );
        }
        if (writes.creditHold) {
          const held = this.hold(writes.creditHold, now);
          const credits = creditGauge(this.topUp(), held.units, held.balance);
          if (credits) crossed = [...crossed, ...crossings([credits])];
          creditHold = held;
        }
        alerts = this.fire(crossed, env, now);
      });
    if (alerts > 0) this.sendOutboxSoon();
    const usage = input.peek ? periodUsage(config, env, this.store, now) : undefined;
    return {
      outcome: "admitted",
      ...(decision.pastDue ? { pastDue: decision.pastDue } : {}),
      limits: decision.limits,
      leaseToken,
      admittedAt: now,
      creditHold,
      ...(slotId ? { slotId } : {}),
      ...(usage ? { usage } : {}),
    };
  }

  /**
   * Adds `units` (negative: debits) to the credit balance, once per grant id: a second grant with
   * the same id changes nothing and answers `duplicate` with the current balance. A debit larger
   * than the balance changes nothing (`insufficient`) and is not remembered, so it may be retried.
   */
  async grantCredits(grant: CreditGrant): Promise<GrantResult> {
    return this.grantAt(grant, Date.now());
  }

  /** `grantCredits` at an explicit time (tests drive the clock through here). */
  grantAt(grant: CreditGrant, now: number): GrantResult {
    if (!Number.isSafeInteger(grant.units) || grant.units === 0)
      throw new RangeError("units must be a non-zero integer");
    const balance = this.balance();
    if (this.one("SELECT 1 AS seen FROM credit_grants WHERE id = ?", grant.id))
      return { outcome: "duplicate", balance };
    const after = balanceAfterGrant(balance, grant.units);
    if (after === null) return { outcome: "insufficient", balance };
    this.transaction(() => {
      this.sql.exec("INSERT INTO credit_grants (id, units, at) VALUES (?, ?, ?)", grant.id, grant.units, now);
      this.setBalance(after);
      this.countCredits(now, grant.units, 0);
      // A top-up starts a new credits period for the usage alerts, measured against the balance it left.
      if (grant.units > 0)
        this.sql.exec(
          "INSERT INTO credit_topup (id, grant_id, base) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET grant_id = excluded.grant_id, base = excluded.base",
          grant.id,
          after,
        );
    });
    return { outcome: "granted", balance: after };
  }

  /**
   * Gives back the credits a request held, when it turned out not billable. Idempotent (the hold
   * is gone after the first release) and bounded: a hold past its lease is spent and stays spent.
   * Answers whether anything was released.
   */
  async releaseCredits(holdId: string): Promise<boolean> {
    return this.releaseAt(holdId, Date.now());
  }

  /** `releaseCredits` at an explicit time. */
  releaseAt(holdId: string, now: number): boolean {
    const hold = this.one(
      "SELECT units, hour FROM credit_holds WHERE id = ? AND expires_at > ?",
      holdId,
      now,
    );
    if (!hold) return false;
    this.transaction(() => {
      this.sql.exec("DELETE FROM credit_holds WHERE id = ?", holdId);
      this.setBalance(this.balance() + (hold.units as number));
      this.sql.exec("UPDATE credit_hours SET spent = spent - ? WHERE hour = ?", hold.units, hold.hour);
    });
    return true;
  }

  /** Ends an in-flight slot after its response (fair shedding); false when it had lapsed or was released. */
  async releaseSlot(route: string, slotId: string): Promise<boolean> {
    return this.slots.release(route, slotId);
  }

  /** The credit balance, and what holds within their lease still hold (credits.ts `CreditBalance`). */
  async creditBalance(): Promise<CreditBalance> {
    const held = this.one(
      "SELECT coalesce(sum(units), 0) AS held FROM credit_holds WHERE expires_at > ?",
      Date.now(),
    );
    return { balance: this.balance(), held: (held?.held as number) ?? 0 };
  }

  /** Credits granted and spent (held − released) per hour in [from, to): the object's credit ledger. */
  async creditHours(from: number, to: number): Promise<CreditHour[]> {
    return this.hours<CreditHour>("credit_hours", "granted, spent", from, to);
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

  /**
   * Applies a key change from the admin API (create, update, revoke, rotate); the next request
   * with that key sees it, whatever KV and isolate caches hold. An extended expiry un-refuses the
   * key; a revocation is final.
   */
  async putKey(keyId: string, incoming: KeyState): Promise<void> {
    const state = mergeKeyState(this.store.key(keyId), incoming);
    const ends = [state.revokedAt, state.expiresAt].filter((t): t is number => t !== null);
    this.sql.exec(
      "INSERT INTO keys (key_id, version, end_at, body) VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO UPDATE SET version = excluded.version, end_at = excluded.end_at, body = excluded.body",
      keyId,
      state.version,
      ends.length > 0 ? Math.min(...ends) : null,
      JSON.stringify(state),
    );
    this.cache.keys.set(keyId, state);
    if (ends.length > 0) await this.scheduleCleanup();
  }

  /** The current period's usage in every window, without charging anything (the admin usage API). */
  async peek(config: TenantConfig, env: "live" | "test" = "live"): Promise<CurrentUsage> {
    return periodUsage(this.adoptConfig(config), env, this.store, Date.now());
  }

  /** Admitted requests and units per hour in [from, to): the edge's side of reconciliation. */
  async ledger(from: number, to: number): Promise<LedgerHour[]> {
    this.commitPending();
    return this.hours<LedgerHour>("ledger", "requests, units", from, to);
  }

  /**
   * Lease mode (lease.ts): settles the leases the holder reports, then grants it a new one — or
   * refuses as the asking request would be refused, or answers `exact` (the plan is not leased, or
   * leases hold their whole share of a bucket). Steady state: one call per holder per lifetime.
   */
  async lease(input: LeaseInput): Promise<LeaseResult> {
    const result = this.leaseAt(input, Date.now());
    if (result.outcome === "granted") await this.scheduleCleanup();
    return result;
  }

  /** `lease` at an explicit time: settle, decide, charge — synchronous, like `decide`. */
  leaseAt(input: LeaseInput, now: number): LeaseResult {
    const config = this.adoptConfig(input.config);
    let result: LeaseResult = { outcome: "exact" };
    let alerts = 0;
    this.transaction(() => {
      this.lapseLeases(now);
      this.countLeaseCall();
      this.settleLeases(input.holder, input.settle);
      const held = (where: string, ...bindings: SqlStorageValue[]) =>
        (this.one(
          `SELECT coalesce(sum(units), 0) AS n FROM leases WHERE expires_at > ?${where}`,
          now,
          ...bindings,
        )?.n as number) ?? 0;
      const decision = decideLease(
        input,
        config,
        this.store,
        { tenant: held(""), key: held(" AND key_id = ?", input.keyId) },
        now,
      );
      if (decision.outcome !== "granted") {
        result = decision;
        return;
      }
      const { writes, units } = decision;
      this.writeWindows(writes.buckets, writes.quotas);
      const leaseId = crypto.randomUUID();
      const expiresAt = now + lifetime(input.lifetimeMs);
      this.sql.exec(
        "INSERT INTO leases (id, holder, key_id, units, granted_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
        leaseId,
        input.holder,
        input.keyId,
        units,
        now,
        expiresAt,
      );
      // Usage alerts fire on what the lease draws: at most one lease early.
      alerts = this.fire(
        crossings(writes.quotas.map((q) => quotaGauge(q.window, q.usage, units, q.quota))),
        "live",
        now,
      );
      result = {
        outcome: "granted",
        leaseId,
        units,
        grantedAt: now,
        expiresAt,
        limits: decision.limits,
        ipAllowlist: decision.ipAllowlist,
        ...(decision.pastDue ? { pastDue: decision.pastDue } : {}),
      };
    });
    if (alerts > 0) this.sendOutboxSoon();
    return result;
  }

  /** A holder gives back leases it no longer admits from (its traffic stopped): settled as by `lease`. */
  async returnLeases(holder: string, reports: LeaseReport[]): Promise<void> {
    this.transaction(() => {
      this.countLeaseCall();
      this.settleLeases(holder, reports);
    });
  }

  /**
   * Lease-mode calls this object has served (grants and returns) and the requests admitted from
   * leases, since it was created: with the ledger, what the benchmark divides by to get object
   * calls per admitted request (the rest of the ledger's requests were each one `admit`).
   */
  async leaseTotals(): Promise<{ calls: number; requests: number }> {
    const row = this.one("SELECT calls, requests FROM lease_totals WHERE id = 1");
    return { calls: (row?.calls as number) ?? 0, requests: (row?.requests as number) ?? 0 };
  }

  /** Leases that lapsed unreported per hour of grant in [from, to): what reconciliation may miss. */
  async leaseLapses(from: number, to: number): Promise<LapsedHour[]> {
    return this.hours<LapsedHour>("lease_lapses", "leases, units", from, to);
  }

  /** Reconciliation's one call per tenant: the ledger's hours and the lapsed leases' hours in [from, to). */
  async reconciliationHours(from: number, to: number): Promise<ReconciliationHours> {
    return { admitted: await this.ledger(from, to), lapsed: await this.leaseLapses(from, to) };
  }

  /** Usage alerts decided but not yet accepted by the events queue. */
  async pendingEvents(): Promise<number> {
    return this.one("SELECT count(*) AS n FROM event_outbox")?.n as number;
  }

  override async alarm(): Promise<void> {
    const now = Date.now();
    this.sql.exec("DELETE FROM ledger WHERE hour < ?", now - LEDGER_RETENTION_MS);
    this.sql.exec("DELETE FROM idempotency WHERE expires_at <= ?", now);
    this.sql.exec("DELETE FROM keys WHERE end_at <= ?", now - KEY_RETENTION_MS);
    this.cache.keys.clear();
    this.sql.exec("DELETE FROM thresholds_fired WHERE fired_at < ?", now - LEDGER_RETENTION_MS);
    this.transaction(() => this.lapseLeases(now));
    await this.sendOutbox(now);
    await this.scheduleCleanup(true);
  }

  /** The next alarm: the earliest of every duty (outbox send or its retry, idempotency expiry, key retention). */
  private async scheduleCleanup(force = false): Promise<void> {
    if (!force && (await this.ctx.storage.getAlarm()) !== null) return;
    const next = this.one(
      `SELECT min(t) AS t FROM (SELECT min(expires_at) AS t FROM idempotency
         UNION ALL SELECT min(end_at) + ${KEY_RETENTION_MS} FROM keys
         UNION ALL SELECT min(expires_at) + ${LAPSE_GRACE_MS} FROM leases
         UNION ALL SELECT CASE WHEN EXISTS (SELECT 1 FROM event_outbox)
           THEN coalesce((SELECT retry_at FROM outbox_retry WHERE id = 1), ?) END)`,
      Date.now(),
    );
    if (next?.t != null) await this.ctx.storage.setAlarm(next.t as number);
  }

  /**
   * Records each crossing as fired, once per (window, env, period, threshold) — a limit changed
   * mid-period fires nothing twice — and outboxes the event of each that was not fired before.
   * Inside admission's transaction. Answers how many events it outboxed.
   */
  private fire(found: Crossing[], env: "live" | "test", now: number): number {
    if (found.length === 0) return 0;
    // Every tenant object is addressed by name (`getByName(tenantId)`), so the runtime knows it.
    const tenantId = this.ctx.id.name;
    if (tenantId === undefined) return 0;
    let added = 0;
    for (const crossing of found) {
      const inserted = this.sql.exec(
        `INSERT OR IGNORE INTO thresholds_fired ("window", env, period, threshold, fired_at) VALUES (?, ?, ?, ?, ?)`,
        crossing.window,
        env,
        crossing.period,
        crossing.threshold,
        now,
      );
      if (inserted.rowsWritten === 0) continue;
      this.sql.exec(
        "INSERT INTO event_outbox (body) VALUES (?)",
        JSON.stringify(thresholdEvent(tenantId, env, crossing, now)),
      );
      added++;
    }
    return added;
  }

  /**
   * Makes the alarm fire now, to send the outbox — unless a failed send already set it for its
   * retry. Not awaited, on purpose: `decide` has no await. Storage writes made in one turn without
   * an await are committed together, and the output gate holds the response until they are
   * durable, so rows in the outbox always have an alarm coming.
   */
  private sendOutboxSoon(): void {
    if (this.one("SELECT 1 AS failing FROM outbox_retry WHERE id = 1")) return;
    void this.ctx.storage.setAlarm(Date.now());
  }

  /**
   * Sends the outbox oldest first as `events` messages of up to 100 events, deleting rows only
   * once the queue accepted them. A failed send keeps them and sets the retry's time (backing off);
   * rows decided meanwhile wait for it. Event ids are derived here (async), from what the row holds.
   */
  private async sendOutbox(now: number): Promise<void> {
    const retry = this.one("SELECT failures, retry_at FROM outbox_retry WHERE id = 1");
    if (retry && (retry.retry_at as number) > now) return;
    for (;;) {
      const rows = this.sql
        .exec<{ id: number; body: string }>(
          "SELECT id, body FROM event_outbox ORDER BY id LIMIT ?",
          OUTBOX_BATCH,
        )
        .toArray();
      const last = rows.at(-1);
      if (!last) break;
      const events = await Promise.all(
        rows.map(async (row): Promise<QueuedEvent> => {
          const event = JSON.parse(row.body) as ThresholdEvent;
          return { id: await thresholdEventId(event), ...event };
        }),
      );
      try {
        await this.outboxQueue.send({ kind: "events", events }, { contentType: "json" });
      } catch {
        const failures = ((retry?.failures as number | undefined) ?? 0) + 1;
        this.sql.exec(
          "INSERT INTO outbox_retry (id, failures, retry_at) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET failures = excluded.failures, retry_at = excluded.retry_at",
          failures,
          now + outboxRetryDelayMs(failures),
        );
        return;
      }
      // Rows outboxed while the send was in flight have higher ids: they stay for the next round.
      this.sql.exec("DELETE FROM event_outbox WHERE id <= ?", last.id);
    }
    this.sql.exec("DELETE FROM outbox_retry");
  }

  /**
   * Settles the holder's reported leases (inside a transaction): the ledger counts the requests
   * they admitted, in the hour of their grant; the quotas and the buckets (the tenant's, and the
   * key's own if it has one) get back the units they did not use.
   * A lease already settled, or lapsed, is not found and changes nothing (a report is never counted twice).
   */
  private settleLeases(holder: string, reports: LeaseReport[]): void {
    for (const report of reports) {
      const row = this.one(
        "DELETE FROM leases WHERE id = ? AND holder = ? RETURNING units, granted_at, key_id",
        report.leaseId,
        holder,
      );
      if (!row) continue;
      const grantedAt = row.granted_at as number;
      const done = settle({ units: row.units as number, grantedAt }, report);
      if (done.requests > 0) {
        this.sql.exec("UPDATE lease_totals SET requests = requests + ? WHERE id = 1", done.requests);
        this.countLedger(done.hour, done.requests, done.units);
      }
      const quotas = (["daily", "monthly"] as const).flatMap((window) => {
        const usage = refund(window, this.store.quota(window), done.unused, grantedAt);
        return usage ? [{ name: window, usage }] : [];
      });
      // Leases are live traffic only: the tenant's live bucket, and the key's own (a row only if it has a limit).
      const buckets = ["tenant", `key:${row.key_id as string}`].flatMap((name) => {
        const state = refundTokens(this.store.bucket(name), done.unused);
        return state ? [{ name, state }] : [];
      });
      this.writeWindows(buckets, quotas);
    }
  }

  private countLeaseCall(): void {
    this.sql.exec(
      "INSERT INTO lease_totals (id, calls, requests) VALUES (1, 1, 0) ON CONFLICT (id) DO UPDATE SET calls = calls + 1",
    );
  }

  /** Leases unreported past their grace lapse (inside a transaction): spent for good, counted per hour. */
  private lapseLeases(now: number): void {
    const lapsed = this.sql
      .exec<{ units: number; granted_at: number }>(
        "DELETE FROM leases WHERE expires_at <= ? RETURNING units, granted_at",
        now - LAPSE_GRACE_MS,
      )
      .toArray();
    for (const lease of lapsed)
      this.sql.exec(
        "INSERT INTO lease_lapses (hour, leases, units) VALUES (?, 1, ?) ON CONFLICT (hour) DO UPDATE SET leases = leases + 1, units = units + excluded.units",
        Math.floor(lease.granted_at / HOUR_MS) * HOUR_MS,
        lease.units,
      );
  }

  /**
   * Persists the windows an admission (or a lease) charged, one statement per table however many
   * windows, and keeps the in-memory copy in step (inside the caller's transaction).
   */
  private writeWindows(
    buckets: readonly { name: string; state: Bucket }[],
    quotas: readonly { name: string; usage: QuotaUsage }[],
  ): void {
    if (buckets.length > 0)
      this.sql.exec(
        `INSERT INTO buckets (name, tokens, updated_at, capacity) VALUES ${rows(buckets.length, 4)} ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated_at = excluded.updated_at, capacity = excluded.capacity`,
        ...buckets.flatMap(({ name, state }) => [name, state.tokens, state.updatedAt, state.capacity]),
      );
    if (quotas.length > 0)
      this.sql.exec(
        `INSERT INTO quotas (name, period, used) VALUES ${rows(quotas.length, 3)} ON CONFLICT (name) DO UPDATE SET period = excluded.period, used = excluded.used`,
        ...quotas.flatMap(({ name, usage }) => [name, usage.period, usage.used]),
      );
    this.cacheWindows(buckets, quotas);
  }

  private cacheWindows(
    buckets: readonly { name: string; state: Bucket }[],
    quotas: readonly { name: string; usage: QuotaUsage }[],
  ): void {
    for (const { name, state } of buckets) this.cache.buckets.set(name, state);
    for (const { name, usage } of quotas) this.cache.quotas.set(name, usage);
  }

  private countLedger(hour: number, requests: number, units: number): void {
    this.sql.exec(
      "INSERT INTO ledger (hour, requests, units) VALUES (?, ?, ?) ON CONFLICT (hour) DO UPDATE SET requests = requests + excluded.requests, units = units + excluded.units",
      hour,
      requests,
      units,
    );
  }

  /** Commits what admissions parked (group-commit.ts), if anything; a failure is theirs (they get it), not the caller's. */
  private commitPending(): void {
    if (this.pending.empty) return;
    try {
      this.transaction(() => undefined);
    } catch {
      // Every admission of the group rejects with the error; memory was reset from SQLite.
    }
  }

  private balance(): number {
    this.cache.balance ??=
      (this.one("SELECT balance FROM credits WHERE id = 1")?.balance as number | undefined) ?? 0;
    return this.cache.balance;
  }

  private setBalance(balance: number): void {
    this.sql.exec(
      "INSERT INTO credits (id, balance) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET balance = excluded.balance",
      balance,
    );
    this.cache.balance = balance;
  }

  /**
   * Runs `fn` as one SQLite transaction. `fn` updates the cache as it writes; if the transaction
   * fails (and rolls back), the cache may hold writes SQLite does not, so all of it is dropped.
   */
  private transaction<T>(fn: () => T): T {
    const parked = this.pending.take();
    try {
      const result = this.ctx.storage.transactionSync(() => {
        if (parked) {
          this.writeWindows(parked.buckets, parked.quotas);
          for (const { hour, requests, units } of parked.ledger) this.countLedger(hour, requests, units);
        }
        return fn();
      });
      parked?.settle();
      return result;
    } catch (error) {
      this.cache = emptyCache();
      parked?.settle(error);
      throw error;
    }
  }

  private countCredits(now: number, granted: number, spent: number): void {
    this.sql.exec(
      "INSERT INTO credit_hours (hour, granted, spent) VALUES (?, ?, ?) ON CONFLICT (hour) DO UPDATE SET granted = granted + excluded.granted, spent = spent + excluded.spent",
      Math.floor(now / HOUR_MS) * HOUR_MS,
      granted,
      spent,
    );
  }

  /**
   * Holds a request's credits (inside admission's transaction). Holds past their lease are spent
   * for good: they are dropped here, on the way, so the table stays the size of what is in flight.
   */
  private hold(hold: { units: number; expiresAt: number }, now: number) {
    this.sql.exec("DELETE FROM credit_holds WHERE expires_at <= ?", now);
    const id = crypto.randomUUID();
    const balance = this.balance() - hold.units;
    this.sql.exec(
      "INSERT INTO credit_holds (id, units, hour, expires_at) VALUES (?, ?, ?, ?)",
      id,
      hold.units,
      Math.floor(now / HOUR_MS) * HOUR_MS,
      hold.expiresAt,
    );
    this.setBalance(balance);
    this.countCredits(now, 0, hold.units);
    return { id, units: hold.units, balance };
  }

  /** The last top-up: its grant id and the balance it left (the credits gauge's period and limit). */
  private topUp(): { grantId: string; base: number } | null {
    const row = this.one("SELECT grant_id, base FROM credit_topup WHERE id = 1");
    return row ? { grantId: row.grant_id as string, base: row.base as number } : null;
  }

  /** The rows of an hourly table (`hour` and `columns`) for the hours in [from, to), oldest first. */
  private hours<T>(table: string, columns: string, from: number, to: number): T[] {
    return this.sql
      .exec<Row>(`SELECT hour, ${columns} FROM ${table} WHERE hour >= ? AND hour < ? ORDER BY hour`, from, to)
      .toArray() as T[];
  }

  private one(query: string, ...bindings: SqlStorageValue[]): Row | undefined {
    return this.sql.exec<Row>(query, ...bindings).toArray()[0];
  }

  /**
   * The config to decide with: the newer of the stored one and the one the call brought; without
   * one, the stored one if it is at least the version the caller holds, else null (`config_needed`).
   */
  private configFor(input: AdmitInput): TenantConfig | null {
    if (input.config) return this.adoptConfig(input.config);
    const stored = this.storedConfig();
    return stored && stored.version >= (input.configVersion ?? Number.POSITIVE_INFINITY) ? stored : null;
  }

  private storedConfig(): TenantConfig | null {
    if (this.cache.config === undefined) {
      const row = this.one("SELECT body FROM config WHERE id = 1");
      this.cache.config = row ? (JSON.parse(row.body as string) as TenantConfig) : null;
    }
    return this.cache.config;
  }

  /** Keeps whichever config is newer: the stored one, or the one the request (or admin) brought. */
  private adoptConfig(incoming: TenantConfig): TenantConfig {
    const stored = this.storedConfig();
    if (stored && stored.version >= incoming.version) return stored;
    this.sql.exec(
      "INSERT INTO config (id, version, body) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body",
      incoming.version,
      JSON.stringify(incoming),
    );
    this.cache.config = incoming;
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
}

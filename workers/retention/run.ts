/**
 * The retention cron step: each run prunes every kind of record past its cutoff (policies.ts), in
 * bounded batches (prune.ts, prune-audit.ts), and stops early enough to leave the rest to the next
 * run.
 *
 * It runs on every cron tick (each minute) rather than once an hour: an idle run costs one bounded
 * statement per kind, each a handful of index probes (per tenant for the usage tables, per chain
 * for the audit logs), and a backlog — the first deploy over a year of history, or a traffic peak
 * turning 90 days old — drains at up to `maxBatchesPerKind × batchSize` rows per kind per minute
 * instead of per hour. Runs never need to overlap: `budgetMs` is well under the minute. If two
 * ever do, they delete disjoint or already-deleted rows, and chain pruning takes the chain's lock.
 */
import { loadConfig } from "../config";
import type { Bindings, Config } from "../env";
import { log } from "../log";
import { type Db, openDb } from "../shared/db";
import { cutoffs, RETENTION_KINDS, type RetentionKind } from "./policies";
import {
  type PruneBatch,
  prunePortalCodes,
  pruneShadowMismatches,
  pruneShadowResults,
  pruneUsageEvents,
  pruneUsageRollups,
  pruneWebhookAttempts,
  pruneWebhookDeliveries,
  pruneWebhookEvents,
  pruneWebSessions,
} from "./prune";
import { expiredChains, pruneChain } from "./prune-audit";

export interface PruneLimits {
  /** Rows one statement deletes at most. */
  batchSize: number;
  /** Delete statements per kind per run at most, so one kind's backlog never starves the others. */
  maxBatchesPerKind: number;
  /** No statement starts this long after the run began. */
  budgetMs: number;
}

/**
 * 5,000 rows per statement stays well under a second on Postgres; 20 statements × 11 kinds within
 * 20 s leaves the cron's other steps and the next tick room.
 */
export const DEFAULT_PRUNE_LIMITS: PruneLimits = {
  batchSize: 5_000,
  maxBatchesPerKind: 20,
  budgetMs: 20_000,
};

/** What one run did to one kind. */
export interface KindReport {
  kind: RetentionKind;
  /** Rows strictly before this instant had expired (ISO). */
  cutoff: string;
  /** Rows each delete statement removed, in order. */
  batches: number[];
  deleted: number;
  /** Nothing expired is left (false: the run's budget ran out first, or it failed). */
  drained: boolean;
  error?: string;
}

const BATCHES: Record<Exclude<RetentionKind, "audit_requests" | "audit_actions">, PruneBatch> = {
  usage_events: pruneUsageEvents,
  usage_rollups: pruneUsageRollups,
  webhook_attempts: pruneWebhookAttempts,
  webhook_deliveries: pruneWebhookDeliveries,
  webhook_events: pruneWebhookEvents,
  web_sessions: pruneWebSessions,
  portal_codes: prunePortalCodes,
  shadow_results: pruneShadowResults,
  shadow_mismatches: pruneShadowMismatches,
};

/** Prunes one kind until it is drained or `take` refuses another statement; returns whether drained. */
async function pruneKind(
  db: Db,
  kind: RetentionKind,
  cutoff: Date,
  limit: number,
  take: () => boolean,
  batches: number[],
): Promise<boolean> {
  if (kind === "audit_requests" || kind === "audit_actions") {
    const auditLog = kind === "audit_requests" ? "request" : "action";
    for (;;) {
      const chains = await expiredChains(db, auditLog, cutoff);
      if (chains.length === 0) return true;
      for (const chain of chains) {
        if (!take()) return false;
        batches.push(await pruneChain(db, auditLog, chain, cutoff, limit));
      }
    }
  }
  const batch = BATCHES[kind];
  for (;;) {
    if (!take()) return false;
    const deleted = await batch(db, cutoff, limit);
    batches.push(deleted);
    if (deleted < limit) return true;
  }
}

/**
 * Prunes every kind for a run at `now` (the cron's scheduled time, so a delayed run cuts where it
 * was meant to). A kind that fails is logged and reported; the others still run.
 */
export async function pruneExpired(
  db: Db,
  retention: Config["retention"],
  now: number,
  limits: PruneLimits = DEFAULT_PRUNE_LIMITS,
): Promise<KindReport[]> {
  const deadline = Date.now() + limits.budgetMs;
  const cuts = cutoffs(now, retention);
  const reports: KindReport[] = [];
  for (const kind of RETENTION_KINDS) {
    const batches: number[] = [];
    const take = () => batches.length < limits.maxBatchesPerKind && Date.now() < deadline;
    const report: KindReport = {
      kind,
      cutoff: cuts[kind].toISOString(),
      batches,
      deleted: 0,
      drained: false,
    };
    try {
      report.drained = await pruneKind(db, kind, cuts[kind], limits.batchSize, take, batches);
    } catch (error) {
      report.error = String(error);
      log.error("retention failed", { kind, error: report.error });
    }
    report.deleted = batches.reduce((sum, n) => sum + n, 0);
    reports.push(report);
  }
  return reports;
}

/**
 * The cron's retention step. Logs what it deleted (only when it deleted something or a backlog is
 * left); errors are logged, never thrown: the next minute retries.
 */
export async function retentionCron(env: Bindings, scheduledTime: number): Promise<void> {
  const loaded = loadConfig(env);
  // A bad var is logged once by loadConfig; pruning on a guessed retention would delete data.
  if (!loaded.ok) return;
  const handle = openDb(env);
  try {
    const reports = await pruneExpired(handle.db, loaded.config.retention, scheduledTime);
    const deleted = Object.fromEntries(reports.filter((r) => r.deleted > 0).map((r) => [r.kind, r.deleted]));
    const backlog = reports.filter((r) => !r.drained && !r.error).map((r) => r.kind);
    if (Object.keys(deleted).length > 0 || backlog.length > 0)
      log.info("retention pruned", { deleted, backlog });
  } catch (error) {
    log.error("retention failed", { error: String(error) });
  } finally {
    await handle.close();
  }
}

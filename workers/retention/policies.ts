/**
 * Retention policies, pure: which kinds of record are pruned, by which column, and the instant
 * before which a row of each kind has expired at a given run time (README "Retention").
 *
 * The boundary: a row expires when its column is strictly before the cutoff, so a row exactly as old
 * as its retention is still kept by that run (and goes in the next one). Days are 24 h; rollups are
 * kept for calendar months in UTC, clamped to the shorter month (31 March − 1 month = 28/29 February
 * at the same time of day), like billing periods (workers/billing/period.ts).
 */
import { addMonths } from "../billing/period";
import type { Config } from "../env";

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** Expired web sessions and portal codes are removed this long after they expired (housekeeping, not a var). */
export const HOUSEKEEPING_DAYS = 30;

/**
 * Every kind the cron prunes, in the order a run visits them. Webhook attempts go before their
 * deliveries, and deliveries before their events, so no delete cascades beyond its own batch.
 */
export const RETENTION_KINDS = [
  "usage_events",
  "usage_rollups",
  "audit_requests",
  "audit_actions",
  "webhook_attempts",
  "webhook_deliveries",
  "webhook_events",
  "web_sessions",
  "portal_codes",
  "shadow_results",
  "shadow_mismatches",
] as const;

export type RetentionKind = (typeof RETENTION_KINDS)[number];

/** `days` whole days before `now`. */
export function daysBefore(now: number, days: number): Date {
  return new Date(now - days * DAY_MS);
}

/** `months` calendar months before `now` (UTC), clamped to the target month's last day. */
export function monthsBefore(now: number, months: number): Date {
  return new Date(addMonths(now, -months));
}

/** The cutoff of every kind for a run at `now`: rows strictly before it have expired. */
export function cutoffs(now: number, retention: Config["retention"]): Record<RetentionKind, Date> {
  const webhooks = daysBefore(now, retention.webhookDays);
  const housekeeping = daysBefore(now, HOUSEKEEPING_DAYS);
  const usageEvents = daysBefore(now, retention.usageEventsDays);
  const rollups = monthsBefore(now, retention.rollupsMonths);
  return {
    usage_events: usageEvents,
    usage_rollups: rollups,
    audit_requests: daysBefore(now, retention.requestAuditDays),
    audit_actions: daysBefore(now, retention.actionAuditDays),
    webhook_attempts: webhooks,
    webhook_deliveries: webhooks,
    webhook_events: webhooks,
    web_sessions: housekeeping,
    portal_codes: housekeeping,
    // Shadow traffic: the hourly counters live as long as the usage rollups, the per-request
    // mismatch samples as long as the raw usage events.
    shadow_results: rollups,
    shadow_mismatches: usageEvents,
  };
}

/**
 * The first whole hour whose raw usage events are all still stored at `now`: no run so far can have
 * pruned anything at or after `now − days` (runs use their own, earlier, scheduled time). Older hours
 * are read from the hourly rollups instead (reconciliation).
 */
export function rawUsageKeptFrom(now: number, days: number): number {
  return Math.ceil((now - days * DAY_MS) / HOUR_MS) * HOUR_MS;
}

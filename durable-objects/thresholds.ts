/**
 * Usage alerts, the pure rules: which thresholds (80 %, 100 %) an admitted request crossed, and the
 * `usage.threshold.reached` event each crossing becomes. The tenant object (tenant.ts) asks at every
 * admission, inside the admission's own transaction, with values the decision already has — so a
 * threshold is decided by exactly the request that crosses it, under any concurrency — and records
 * each crossing once per threshold and period (a fired threshold is never fired again, even if the
 * limit changes mid-period).
 *
 * A gauge is anything that fills up towards a limit within a period:
 * - a quota window (daily, monthly) of the env the request spent: usage against the quota;
 * - a prepaid tenant's credits: units spent since the last top-up against the balance right after
 *   it (the period is that top-up's grant id). 80 % = spent ≥ 0.8 × that base; 100 % = the balance
 *   reached 0.
 *
 * Integer math only: a threshold `t` of a limit `L` is crossed when `before·100 < t·L ≤ after·100`.
 */
import type { QuotaUsage, QuotaWindow } from "./quota";
import { sha256Hex } from "./sha256";

export const THRESHOLDS = [80, 100] as const;
export type Threshold = (typeof THRESHOLDS)[number];

export type GaugeWindow = QuotaWindow | "credits";

/** One gauge around one admitted request. */
export interface Gauge {
  window: GaugeWindow;
  period: string;
  /** Used before the request (same period). */
  before: number;
  /** Used after it, counting the request. */
  after: number;
  /** Null or ≤ 0: nothing to cross. */
  limit: number | null;
}

/** One threshold crossed by one request. */
export interface Crossing {
  window: GaugeWindow;
  period: string;
  threshold: Threshold;
  /** Used in the period, counting the request that crossed. */
  used: number;
  limit: number;
}

/** `data` of a `usage.threshold.reached` event, as workers/events/catalog.ts documents it to tenants. */
export interface ThresholdData {
  window: GaugeWindow;
  threshold: Threshold;
  env: "live" | "test";
  period: string;
  used: number;
  limit: number;
}

/**
 * The event a crossing becomes, as the object stores it in its outbox: an `events` message's event
 * without its id (derived when sent, `thresholdEventId`).
 */
export interface ThresholdEvent {
  tenantId: string;
  type: "usage.threshold.reached";
  data: ThresholdData;
  /** ISO 8601: the admission's time. */
  at: string;
}

/** An outboxed event with its id: what goes on the events queue. */
export type QueuedEvent = ThresholdEvent & { id: string };

/**
 * What the object puts on the events queue: an `events` message, as the Worker's consumer reads
 * it (workers/events/messages.ts). Declared here so the object names no type from workers/.
 */
export interface ThresholdsMessage {
  kind: "events";
  events: QueuedEvent[];
}

/** The one binding the object uses: where its outbox goes (wrangler.toml `EVENTS_QUEUE`). */
export interface OutboxEnv {
  EVENTS_QUEUE: Queue<ThresholdsMessage>;
}

/** The thresholds `before → after` crossed on a limit: none, 80, 100, or both in one jump. */
export function crossedMarks(before: number, after: number, limit: number | null): Threshold[] {
  if (limit === null || limit <= 0) return [];
  return THRESHOLDS.filter((t) => before * 100 < t * limit && t * limit <= after * 100);
}

/** Every threshold the gauges crossed, in gauge order. */
export function crossings(gauges: readonly Gauge[]): Crossing[] {
  return gauges.flatMap((g) =>
    crossedMarks(g.before, g.after, g.limit).map((threshold) => ({
      window: g.window,
      period: g.period,
      threshold,
      used: g.after,
      limit: g.limit as number,
    })),
  );
}

/** A quota window's gauge from its usage after a request of `cost` (admission charged it in `usage.period`). */
export function quotaGauge(
  window: QuotaWindow,
  usage: QuotaUsage,
  cost: number,
  limit: number | null,
): Gauge {
  return { window, period: usage.period, before: usage.used - cost, after: usage.used, limit };
}

/**
 * The credits gauge of a request that held `units`, leaving `balance`: spent since the last top-up
 * (`grantId`, which left the balance at `base`). Null before any top-up.
 */
export function creditGauge(
  topUp: { grantId: string; base: number } | null,
  units: number,
  balance: number,
): Gauge | null {
  if (!topUp) return null;
  const spentAfter = topUp.base - balance;
  return {
    window: "credits",
    period: topUp.grantId,
    before: spentAfter - units,
    after: spentAfter,
    limit: topUp.base,
  };
}

/** The `usage.threshold.reached` event of a crossing by `tenantId`'s `env` traffic at `at`. */
export function thresholdEvent(
  tenantId: string,
  env: "live" | "test",
  crossing: Crossing,
  at: number,
): ThresholdEvent {
  const { window, threshold, period, used, limit } = crossing;
  return {
    tenantId,
    type: "usage.threshold.reached",
    data: { window, threshold, env, period, used, limit },
    at: new Date(at).toISOString(),
  };
}

/**
 * The event's id: `evt_` + sha256 of what makes it unique (tenant, env, window, period,
 * threshold). The same crossing always has the same id, so a resent message is stored once.
 */
export async function thresholdEventId(event: ThresholdEvent): Promise<string> {
  const { env, window, period, threshold } = event.data;
  return `evt_${await sha256Hex([event.tenantId, env, window, period, threshold].join("|"))}`;
}

/**
 * Folds a batch of (newly inserted) usage events into hourly and daily rollup rows and billing
 * outbox rows. Pure: the Postgres sink adds these to what is already stored.
 */
import { bucketOf, emptyHistogram } from "./latency-histogram";
import type { UsageEvent } from "./usage-event";

export interface RollupRow {
  tenantId: string;
  granularity: "hour" | "day";
  bucketStart: Date;
  route: string;
  statusClass: number;
  requests: number;
  billableRequests: number;
  billableUnits: number;
  bytesIn: number;
  bytesOut: number;
  latencyHistogram: number[];
}

export interface OutboxRow {
  tenantId: string;
  hour: Date;
  units: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

const truncate = (ts: string, size: number) => new Date(Math.floor(Date.parse(ts) / size) * size);

export function rollUp(events: readonly UsageEvent[]): { rollups: RollupRow[]; outbox: OutboxRow[] } {
  const rollups = new Map<string, RollupRow>();
  const outbox = new Map<string, OutboxRow>();
  for (const e of events) {
    const statusClass = Math.floor(e.status / 100);
    for (const [granularity, size] of [
      ["hour", HOUR_MS],
      ["day", DAY_MS],
    ] as const) {
      const bucketStart = truncate(e.ts, size);
      const id = `${e.tenantId}|${granularity}|${bucketStart.getTime()}|${e.route}|${statusClass}`;
      let row = rollups.get(id);
      if (!row) {
        row = {
          tenantId: e.tenantId,
          granularity,
          bucketStart,
          route: e.route,
          statusClass,
          requests: 0,
          billableRequests: 0,
          billableUnits: 0,
          bytesIn: 0,
          bytesOut: 0,
          latencyHistogram: emptyHistogram(),
        };
        rollups.set(id, row);
      }
      row.requests++;
      if (e.billable) {
        row.billableRequests++;
        row.billableUnits += e.units;
      }
      row.bytesIn += e.bytesIn;
      row.bytesOut += e.bytesOut;
      row.latencyHistogram[bucketOf(e.latencyMs)] = (row.latencyHistogram[bucketOf(e.latencyMs)] ?? 0) + 1;
    }
    if (e.billable && e.units > 0) {
      const hour = truncate(e.ts, HOUR_MS);
      const id = `${e.tenantId}|${hour.getTime()}`;
      const row = outbox.get(id) ?? { tenantId: e.tenantId, hour, units: 0 };
      row.units += e.units;
      outbox.set(id, row);
    }
  }
  return { rollups: [...rollups.values()], outbox: [...outbox.values()] };
}

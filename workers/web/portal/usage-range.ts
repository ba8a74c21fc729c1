/**
 * The portal's time ranges, from what a form sends: the overview's picker (last 24 h by the hour,
 * last 30 days by the day, or a custom from–to at a chosen granularity) and the usage export's
 * from–to. Instants are UTC: a browser's `datetime-local` value (`2027-03-01T10:00`, no zone) is
 * read as UTC, and the API's form (ISO 8601 with an offset) is taken as well. The limits are the
 * usage API's (workers/api/usage.ts), so the portal never asks Postgres for more than the API does.
 */
import { z } from "zod";
import { MAX_EXPORT_MS, MAX_POINTS, range } from "../../api/usage";
import { GatewayError } from "../../errors";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Bucket width per granularity. */
export const BUCKET_MS = { hour: HOUR_MS, day: DAY_MS } as const;

export type Granularity = keyof typeof BUCKET_MS;
export type Preset = "24h" | "30d" | "custom";

/** A range the overview shows: buckets `[from, to)` at `granularity`. */
export interface OverviewRange {
  preset: Preset;
  granularity: Granularity;
  from: Date;
  to: Date;
}

/** What the picker sent, echoed back into the form (strings as typed, escaped by JSX). */
export interface RangeInput {
  range: string;
  from: string;
  to: string;
  granularity: string;
}

const LOCAL = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?$/;
const WITH_OFFSET = z.iso.datetime({ offset: true });

/** An instant from a form field, or a 400 naming the field. */
export function parseInstant(value: string, field: string): Date {
  const text = value.trim();
  // A datetime-local value has no zone: the page says times are UTC.
  const ms =
    text.length <= 40 && LOCAL.test(text)
      ? Date.parse(`${text}Z`)
      : text.length <= 40 && WITH_OFFSET.safeParse(text).success
        ? Date.parse(text)
        : Number.NaN;
  if (Number.isNaN(ms)) {
    throw new GatewayError(
      "validation_failed",
      `\`${field}\` must be a date and time (UTC), e.g. 2027-03-01T10:00.`,
    );
  }
  return new Date(ms);
}

/** The overview's range; a missing or unknown `range` is the last 24 hours. */
export function overviewRange(input: Partial<RangeInput>, now: number): OverviewRange {
  const preset = input.range ?? "24h";
  if (preset === "24h" || preset === "") {
    // The 24 hourly buckets ending with the current one, whole.
    const end = Math.floor(now / HOUR_MS) * HOUR_MS + HOUR_MS;
    return { preset: "24h", granularity: "hour", from: new Date(end - 24 * HOUR_MS), to: new Date(end) };
  }
  if (preset === "30d") {
    const end = Math.floor(now / DAY_MS) * DAY_MS + DAY_MS;
    return { preset: "30d", granularity: "day", from: new Date(end - 30 * DAY_MS), to: new Date(end) };
  }
  if (preset !== "custom") throw new GatewayError("validation_failed", "`range` must be 24h, 30d or custom.");
  const granularity = input.granularity || "hour";
  if (granularity !== "hour" && granularity !== "day") {
    throw new GatewayError("validation_failed", "`granularity` must be hour or day.");
  }
  const from = parseInstant(input.from ?? "", "from");
  const to = parseInstant(input.to ?? "", "to");
  const r = range(from.toISOString(), to.toISOString(), MAX_POINTS[granularity] * BUCKET_MS[granularity]);
  return { preset: "custom", granularity, ...r };
}

/** The export's range: the usage API's limits (at most 366 days). */
export function exportRange(input: { from?: string; to?: string }): { from: Date; to: Date } {
  const from = parseInstant(input.from ?? "", "from");
  const to = parseInstant(input.to ?? "", "to");
  return range(from.toISOString(), to.toISOString(), MAX_EXPORT_MS);
}

/** Every bucket start in `[from, to)` (the first one whole), for a chart with no gaps. */
export function bucketStarts(r: Pick<OverviewRange, "granularity" | "from" | "to">): number[] {
  const width = BUCKET_MS[r.granularity];
  const starts: number[] = [];
  for (let t = Math.floor(r.from.getTime() / width) * width; t < r.to.getTime(); t += width) starts.push(t);
  return starts;
}

/** A `datetime-local` value (UTC, to the minute) for a form field. */
export function localValue(date: Date): string {
  return date.toISOString().slice(0, 16);
}

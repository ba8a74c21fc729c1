/**
 * Calendar-UTC quota windows (daily, monthly) with lazy rollover. Pure.
 *
 * A window's usage is stored with the id of its period (`2026-11-22`, `2026-11`). When the current
 * period differs, usage starts from zero: no cron, and an inactive tenant's first request in a
 * new period starts fresh.
 */

export type QuotaWindow = "daily" | "monthly";

export interface QuotaUsage {
  period: string;
  used: number;
}

/** The id of the period containing `now`. */
export function periodOf(window: QuotaWindow, now: number): string {
  const iso = new Date(now).toISOString();
  return window === "daily" ? iso.slice(0, 10) : iso.slice(0, 7);
}

/** Epoch ms at which the period containing `now` ends (next UTC midnight / first of next month). */
export function periodEnd(window: QuotaWindow, now: number): number {
  const d = new Date(now);
  return window === "daily"
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** Usage in the current period: the stored usage if it is for this period, else zero. */
export function currentUsage(window: QuotaWindow, stored: QuotaUsage | null, now: number): QuotaUsage {
  const period = periodOf(window, now);
  return stored && stored.period === period ? stored : { period, used: 0 };
}

/** Nominal window length in seconds for RateLimit-Policy `w`. */
export const WINDOW_SECONDS: Record<QuotaWindow, number> = { daily: 86_400, monthly: 2_592_000 };

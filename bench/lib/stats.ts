/** Small statistics helpers for the benchmark report. */

export function median(values: readonly number[]): number {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** Nearest-rank percentile (p in 0..100) of unsorted values. */
export function percentile(values: readonly number[], p: number): number {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const rank = Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1));
  return v[rank] as number;
}

// A loop, not Math.min(...values): spreading ~120k lags (one per usage row) overflows the call stack.
export function min(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => (b < a ? b : a)) : Number.NaN;
}

export function max(values: readonly number[]): number {
  return values.length ? values.reduce((a, b) => (b > a ? b : a)) : Number.NaN;
}

/** Fixed decimals, "–" for NaN. */
export function fmt(value: number, decimals = 0): string {
  if (!Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** Decimals chosen by magnitude: 0.123, 1.23, 12.3, 123. */
export function fmtMs(value: number): string {
  if (!Number.isFinite(value)) return "–";
  const abs = Math.abs(value);
  return fmt(value, abs < 1 ? 3 : abs < 10 ? 2 : abs < 100 ? 1 : 0);
}

export function fmtDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
}

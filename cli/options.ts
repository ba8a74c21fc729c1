/**
 * Parsers of flag values. A bad value is commander's `InvalidArgumentError`, so it is reported as a
 * usage error (exit 2) naming the flag, before anything reaches the gateway.
 */
import { InvalidArgumentError } from "commander";

/** A non-negative integer. */
export function integer(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError("not a whole number");
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new InvalidArgumentError("too large");
  return n;
}

/** A quota: a whole number, or `none` for unlimited (null). */
export function quota(value: string): number | null {
  return value === "none" ? null : integer(value);
}

/** JSON, for the nested fields (a plan's pricing, a tenant's overrides). */
export function json(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    throw new InvalidArgumentError("not valid JSON");
  }
}

/** A comma-separated list; empty items dropped. */
export function list(value: string): string[] {
  return value
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v !== "");
}

/** A repeatable flag's values gathered in order. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, ...list(value)];
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** A duration in seconds: `3600`, `90s`, `15m`, `24h`, `7d`. */
export function duration(value: string): number {
  const match = /^(\d+)([smhd]?)$/.exec(value);
  if (!match) throw new InvalidArgumentError("use seconds or a number with s, m, h or d (e.g. 24h)");
  return Number(match[1]) * (UNIT_SECONDS[match[2] || "s"] as number);
}

/** A date (`2026-11-01`, midnight UTC) or an ISO time, as an ISO string. */
export function time(value: string): string {
  const ms = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(value) ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError("not a date (e.g. 2026-11-01 or an ISO time)");
  return new Date(ms).toISOString();
}

/** A per-key rate limit `burst/refill/periodSeconds` (e.g. `10/5/1`), or `none`. */
export function rateLimit(
  value: string,
): { burstCapacity: number; refillTokens: number; refillPeriodSeconds: number } | null {
  if (value === "none") return null;
  const parts = value.split("/");
  if (parts.length !== 3)
    throw new InvalidArgumentError("use burst/refill/periodSeconds, e.g. 10/5/1, or none");
  const [burstCapacity, refillTokens, refillPeriodSeconds] = parts.map(integer) as [number, number, number];
  return { burstCapacity, refillTokens, refillPeriodSeconds };
}

/** A start time: a date or ISO time (as `time`), or a duration back from now (`24h`, `7d`). */
export function since(value: string): string {
  return /^\d+[smhd]$/.test(value)
    ? new Date(Date.now() - duration(value) * 1000).toISOString()
    : time(value);
}

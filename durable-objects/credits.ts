/**
 * Prepaid credits, the pure rules: which request holds credits and how many, and what a grant does
 * to a balance. The tenant object (tenant.ts) keeps the balance in SQLite and applies these inside
 * the same synchronous admission as the limits, so a balance is exact under any concurrency.
 *
 * The life of a unit: a grant (checkout purchase, admin adjustment) adds to the balance; an
 * admitted request of a prepaid tenant's live key on a billable route holds its cost (balance −=
 * cost) with the request; the edge releases the hold (balance += cost) when the request turns out
 * not billable (origin 5xx, gateway error after admission). A hold not released within its lease
 * becomes spent for good: a lost release can never leak a hold forever, and a release that comes
 * late is refused, so the balance is never credited twice.
 */
import type { Door, TenantConfig } from "./limits";

/** What `grantCredits` is asked to do: add (or, negative, debit) `units`, once per `id`. */
export interface CreditGrant {
  /** The id the Postgres ledger row has: a second grant with the same id changes nothing. */
  id: string;
  /** Signed, never 0: a debit (admin adjustment, refund) is negative. */
  units: number;
}

export type GrantResult =
  | { outcome: "granted" | "duplicate"; balance: number }
  /** A debit larger than the balance: nothing changed (a balance is never negative). */
  | { outcome: "insufficient"; balance: number };

/** The object's balance, and what recent requests hold (already deducted; given back if not billable). */
export interface CreditBalance {
  balance: number;
  /** Units of holds still within their lease: in flight, or finished and billable (spent once they lapse). */
  held: number;
}

/** One hour of the object's credit ledger: units granted (net of debits) and spent (held − released). */
export interface CreditHour {
  /** Epoch ms of the hour's start. */
  hour: number;
  granted: number;
  spent: number;
}

/**
 * Units a request holds from the balance: its cost for a prepaid tenant's live key on a billable
 * route through the proxy (`creditHoldMs` is the edge's sign of a billable route), else 0. Test
 * keys and the tenant API never touch credits.
 */
export function creditCost(
  config: TenantConfig,
  request: { door: Door; env: "live" | "test"; cost: number; creditHoldMs?: number | undefined },
): number {
  if (!config.credits || request.door !== "proxy" || request.env !== "live") return 0;
  if (request.creditHoldMs === undefined) return 0;
  return request.cost;
}

/** The balance after a grant of `units`, or null when a debit would take it below zero. */
export function balanceAfterGrant(balance: number, units: number): number | null {
  const after = balance + units;
  return after < 0 ? null : after;
}

/** The problem detail of a refused request: the balance, the cost, and how to top up. */
export function creditsExhaustedDetail(balance: number, cost: number): string {
  return `The credit balance is ${balance} units and this request costs ${cost}. Buy credits with POST /gateway/v1/credits/checkout.`;
}

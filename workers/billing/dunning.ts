/**
 * Dunning: the per-tenant state machine that turns what Stripe currently says about a tenant's
 * subscription into the tenant's status. Pure: no I/O, the time is a parameter. The webhook
 * handlers (workers/billing/webhooks/) read the subscription's CURRENT status from Stripe, so the
 * machine is order-independent: any event, in any order, ends in the state Stripe has now.
 *
 *   active ──payment fails (subscription past_due)──▶ past_due (grace: requests pass, warned)
 *   past_due ──grace ends──▶ (still past_due) 402 payment_required, decided at admission
 *   active | past_due ──subscription unpaid / canceled / incomplete_expired──▶ suspended (403)
 *   past_due | suspended ──subscription active again (invoice paid)──▶ active
 *
 * Billing moves only a tenant that is `active` or whose status billing set: a status the operator
 * set (a manual suspension, a manual past_due) is never lifted or replaced by a billing event.
 */

export type TenantStatus = "active" | "suspended" | "past_due";
export type StatusReason = "operator" | "billing";

/** The dunning part of a tenant row. Times in epoch ms. */
export interface DunningState {
  status: TenantStatus;
  statusReason: StatusReason;
  pastDueSince: number | null;
  graceUntil: number | null;
}

/** What Stripe's current subscription status means for the tenant; null = nothing to do. */
export type BillingSignal = "paid_up" | "payment_failing" | "unpaid";

/**
 * Stripe's subscription status → signal. `incomplete` (first payment pending) and `paused` (no
 * invoices at all) say nothing about a failed payment: no change.
 */
export function signalOf(subscriptionStatus: string): BillingSignal | null {
  switch (subscriptionStatus) {
    case "active":
    case "trialing":
      return "paid_up";
    case "past_due":
      return "payment_failing";
    case "unpaid":
    case "canceled":
    case "incomplete_expired":
      return "unpaid";
    default:
      return null;
  }
}

/**
 * The tenant's next dunning state given the signal at `now`, or null when nothing changes.
 * A past-due tenant keeps the grace it was given when its payment first failed: redelivered or
 * repeated failures (Stripe retries the charge) never extend it.
 */
export function nextDunningState(
  state: DunningState,
  signal: BillingSignal | null,
  now: number,
  graceMs: number,
): DunningState | null {
  if (signal === null) return null;
  if (state.status !== "active" && state.statusReason === "operator") return null;
  switch (signal) {
    case "paid_up":
      if (state.status === "active") return null;
      return { status: "active", statusReason: "billing", pastDueSince: null, graceUntil: null };
    case "payment_failing":
      if (state.status === "past_due") return null;
      return {
        status: "past_due",
        statusReason: "billing",
        pastDueSince: state.pastDueSince ?? now,
        graceUntil: state.graceUntil ?? now + graceMs,
      };
    case "unpaid":
      if (state.status === "suspended") return null;
      return {
        status: "suspended",
        statusReason: "billing",
        pastDueSince: state.pastDueSince ?? now,
        graceUntil: state.graceUntil,
      };
  }
}

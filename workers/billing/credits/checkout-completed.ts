/**
 * `checkout.session.completed` → credits, once. The webhook dispatcher (POST /webhooks/stripe,
 * workers/billing/webhooks/checkout.ts) re-reads the session from Stripe (never trusting an event's
 * snapshot) and hands it to `grantCheckout`, which grants the session's units: a `grant` row whose id
 * is derived from the session id (`cg_<session id>`, unique), then the tenant object's idempotent grant
 * in the same request (ledger.ts). Duplicate and replayed events, and two sessions' events in any
 * order, grant each session exactly once — and tell the tenant once (`credits.purchased`, its event id
 * derived from the session's, emitted again harmlessly by a redelivery after a crash between the
 * grant and the event).
 */
import type Stripe from "stripe";
import type { Bindings } from "../../env";
import { emitEvents } from "../../events/emit";
import { log } from "../../log";
import type { Db } from "../../shared/db";
import { recordAndApply } from "./ledger";

/** What became of the event: credits granted, already granted, left to the cron, or not ours. */
export type CheckoutOutcome = "applied" | "duplicate" | "pending" | "ignored";

/** The grant a paid session carries, or why it carries none. */
export type Purchase =
  | { ok: true; tenantId: string; units: number; amount: number; currency: string }
  | { ok: false; reason: string };

export const checkoutGrantId = (sessionId: string): string => `cg_${sessionId}`;

/** Reads our metadata off a session: paid, a payment for this tenant, a positive whole number of units. */
export function purchaseOf(session: Stripe.Checkout.Session): Purchase {
  if (session.mode !== "payment") return { ok: false, reason: `mode ${session.mode}` };
  if (session.payment_status !== "paid")
    return { ok: false, reason: `payment_status ${session.payment_status}` };
  const tenantId = session.metadata?.tenant_id;
  const units = Number(session.metadata?.units);
  if (!tenantId || session.client_reference_id !== tenantId)
    return { ok: false, reason: "no tenant_id metadata" };
  if (!Number.isSafeInteger(units) || units <= 0) return { ok: false, reason: "no units metadata" };
  if (session.amount_total === null || !session.currency) return { ok: false, reason: "no amount" };
  return { ok: true, tenantId, units, amount: session.amount_total, currency: session.currency };
}

/** Grants a verified, current session's units once (idempotent on the session id). */
export async function grantCheckout(
  env: Pick<Bindings, "TENANT" | "EVENTS_QUEUE">,
  db: Db,
  session: Stripe.Checkout.Session,
  eventId: string | null,
): Promise<CheckoutOutcome> {
  const purchase = purchaseOf(session);
  if (!purchase.ok) {
    log.warn("checkout session ignored", { session: session.id, reason: purchase.reason });
    return "ignored";
  }
  const tenant = await db.query.tenants.findFirst({
    where: (t, { eq }) => eq(t.id, purchase.tenantId),
    columns: { id: true, stripeCustomerId: true },
  });
  const customer = typeof session.customer === "string" ? session.customer : (session.customer?.id ?? null);
  if (!tenant || tenant.stripeCustomerId === null || tenant.stripeCustomerId !== customer) {
    log.warn("checkout session ignored", { session: session.id, reason: "unknown tenant or customer" });
    return "ignored";
  }
  const result = await recordAndApply(env, db, {
    id: checkoutGrantId(session.id),
    tenantId: tenant.id,
    kind: "grant",
    units: purchase.units,
    amount: purchase.amount,
    currency: purchase.currency,
    stripeCheckoutSessionId: session.id,
    stripeEventId: eventId,
  });
  // A grant is positive, so the object never answers `insufficient`.
  if (result.outcome === "insufficient") return "ignored";
  await emitEvents(env, db, [
    {
      id: `evt_credits_${session.id}`,
      tenantId: tenant.id,
      type: "credits.purchased",
      // `pending`: the object has not confirmed the grant yet (the cron applies it), so no balance.
      data: { units: purchase.units, balance: result.outcome === "pending" ? null : result.balance },
      at: result.entry.createdAt,
    },
  ]);
  return result.outcome;
}

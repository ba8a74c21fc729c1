/**
 * `checkout.session.completed` → prepaid credits. The session is re-read from Stripe (an event's
 * snapshot is never trusted: a forged or stale "paid" grants nothing), then the credits wing grants
 * its units once, idempotent on the session id (workers/billing/credits/checkout-completed.ts), in
 * this request: the ledger row, then the tenant object's grant.
 */
import { grantCheckout } from "../credits/checkout-completed";
import type { EventHandler } from "./event-handler";
import { currentCheckoutSession } from "./stripe-reads";

export const onCheckoutCompleted: EventHandler = async (event, ctx) => {
  const id = (event.data.object as { id?: unknown }).id;
  const session = typeof id === "string" ? await currentCheckoutSession(ctx.stripe, id) : null;
  if (!session) return { outcome: "missing_object", tenantId: null };
  const outcome = await grantCheckout(ctx.env, ctx.db, session, event.id);
  if (outcome === "ignored") return { outcome: "ignored", tenantId: null };
  return { outcome: "applied", tenantId: session.metadata?.tenant_id ?? null };
};

/**
 * Brings a tenant's Stripe side to its plan: a customer for every tenant, and for a tenant on a
 * metered plan one subscription whose items are the plan version's prices (base fee + usage).
 *
 * Every change that Stripe must follow is a `billing_sync` row (schema/billing-sync.ts), written
 * in the same transaction as the change. The request that made it applies it at once; if Stripe is
 * off or unreachable the change still completes locally, the row stays `pending` with its error,
 * and the cron retries it with backoff (2 s doubling to 1 h; a bounded batch per run). A row due
 * later (a pricing change applied at the period end) waits for its time. A newer row of the same
 * tenant supersedes a pending older one: every row converges Stripe to its own complete target.
 *
 * Idempotent and never reused: the customer's idempotency key is the tenant id; a subscription
 * is created or changed under keys made of the row id; before creating a subscription the
 * customer's subscriptions are searched for one already made for this tenant (so a crash between
 * Stripe's answer and our write never makes a second one, even after the 24 h key window).
 */
import { and, eq, sql } from "drizzle-orm";
import type Stripe from "stripe";
import {
  type BillingSyncRow,
  billingSync,
  planPricingVersions,
  plans,
  type Tenant,
  tenants,
} from "../../schema";
import type { Bindings } from "../env";
import { log } from "../log";
import { type Db, openDb } from "../shared/db";
import { newId } from "../shared/ids";
import { createCustomer, meterEventName, stripeClient } from "../shared/stripe";
import { ensurePlanPrices } from "./stripe-catalog";

const CLAIM_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 60 * 60_000;
/** Rows one cron run applies; the rest wait for the next run (every minute). */
export const SYNC_BATCH = 50;

type Handle = Pick<Db, "select" | "insert" | "update">;

export interface SyncTarget {
  planId: string;
  pricingVersion: number;
  /** Move an existing subscription with proration now (true) or without it (false, at the period end). */
  prorate: boolean;
  /** When the row is due; default now. */
  dueAt?: Date;
}

/**
 * Records a change Stripe must follow (in the caller's transaction): supersedes the tenant's
 * pending row, if any, and marks its billing `pending`. Returns the new row's id.
 */
export async function enqueueBillingSync(tx: Handle, tenantId: string, target: SyncTarget): Promise<string> {
  const id = newId("bsync");
  await tx
    .update(billingSync)
    .set({ state: "superseded", doneAt: new Date() })
    .where(and(eq(billingSync.tenantId, tenantId), eq(billingSync.state, "pending")));
  await tx.insert(billingSync).values({
    id,
    tenantId,
    planId: target.planId,
    pricingVersion: target.pricingVersion,
    prorate: target.prorate,
    nextAttemptAt: target.dueAt ?? new Date(),
  });
  await tx.update(tenants).set({ billingSync: "pending" }).where(eq(tenants.id, tenantId));
  return id;
}

type Outcome = { kind: "ok" } | { kind: "retry"; error: string } | { kind: "failed"; error: string };

function outcomeOf(error: unknown): Outcome {
  const e = error as { type?: string; statusCode?: number; message?: string };
  const text = `${e.type ?? "Error"}: ${e.message ?? String(error)}`;
  // Connection errors (no status), 429 and 5xx are Stripe being unavailable: try again later.
  if (e.statusCode === undefined || e.statusCode === 429 || e.statusCode >= 500)
    return { kind: "retry", error: text };
  return { kind: "failed", error: text };
}

/** Applies one claimed row: Stripe first, then what Stripe now holds is written to the tenant. */
async function apply(stripe: Stripe, env: Bindings, db: Db, row: BillingSyncRow): Promise<void> {
  const tenant = await db.query.tenants.findFirst({ where: eq(tenants.id, row.tenantId) });
  const plan = await db.query.plans.findFirst({ where: eq(plans.id, row.planId) });
  const version = await db.query.planPricingVersions.findFirst({
    where: and(
      eq(planPricingVersions.planId, row.planId),
      eq(planPricingVersions.version, row.pricingVersion),
    ),
  });
  if (!tenant || !plan || !version)
    throw new Error(`billing sync ${row.id}: tenant, plan or version is gone`);

  let customerId = tenant.stripeCustomerId;
  if (!customerId) {
    customerId = await createCustomer(stripe, tenant);
    await db.update(tenants).set({ stripeCustomerId: customerId }).where(eq(tenants.id, tenant.id));
  }
  const prices = await ensurePlanPrices(
    stripe,
    meterEventName(env),
    plan,
    row.pricingVersion,
    version.pricing,
  );
  const wanted = [prices.base, prices.usage].filter((p): p is string => p !== null);
  const subscription = await converge(stripe, tenant, customerId, wanted, row);
  const periodEnd = subscription?.items.data[0]?.current_period_end;
  await db
    .update(tenants)
    .set({
      stripeSubscriptionId: subscription?.id ?? null,
      billingPlanId: row.planId,
      billingPricingVersion: row.pricingVersion,
      billingPeriodEnd: periodEnd ? new Date(periodEnd * 1000) : null,
      billingStartedAt: subscription ? new Date(subscription.start_date * 1000) : null,
    })
    .where(eq(tenants.id, tenant.id));
}

/** The subscription with exactly the `wanted` prices (none when nothing is wanted). */
export async function converge(
  stripe: Stripe,
  tenant: Tenant,
  customer: string,
  wanted: string[],
  row: BillingSyncRow,
): Promise<Stripe.Subscription | null> {
  let current: Stripe.Subscription | null = null;
  if (tenant.stripeSubscriptionId) {
    current = await stripe.subscriptions.retrieve(tenant.stripeSubscriptionId);
    if (current.status === "canceled") current = null;
  } else {
    const existing = await stripe.subscriptions.list({ customer, limit: 100 });
    current = existing.data.find((s) => s.metadata.gateway_tenant_id === tenant.id) ?? null;
  }
  if (wanted.length === 0) {
    if (current) await stripe.subscriptions.cancel(current.id);
    return null;
  }
  if (!current) {
    return stripe.subscriptions.create(
      {
        customer,
        items: wanted.map((price) => ({ price })),
        metadata: { gateway_tenant_id: tenant.id },
      },
      { idempotencyKey: `${row.id}-subscribe` },
    );
  }
  const items = current.items.data;
  const have = new Set(items.map((item) => item.price.id));
  if (items.length === wanted.length && wanted.every((p) => have.has(p))) return current;
  return stripe.subscriptions.update(
    current.id,
    {
      items: [
        ...items
          .filter((item) => !wanted.includes(item.price.id))
          .map((item) => ({ id: item.id, deleted: true })),
        ...wanted.filter((p) => !have.has(p)).map((price) => ({ price })),
      ],
      proration_behavior: row.prorate ? "create_prorations" : "none",
    },
    { idempotencyKey: `${row.id}-update` },
  );
}

/** Claims due rows (`ids`: only these) by pushing their next attempt past the claim window. */
async function claim(db: Db, now: number, limit: number, ids?: string[]): Promise<BillingSyncRow[]> {
  const only = ids
    ? sql`AND id IN (${sql.join(
        ids.map((id) => sql`${id}`),
        sql`, `,
      )})`
    : sql``;
  const claimed = await db.execute<{ id: string }>(sql`
    UPDATE billing_sync SET next_attempt_at = ${new Date(now + CLAIM_MS)}, attempts = attempts + 1
    WHERE id IN (
      SELECT id FROM billing_sync
      WHERE state = 'pending' AND next_attempt_at <= ${new Date(now)} ${only}
      ORDER BY created_at LIMIT ${limit} FOR UPDATE SKIP LOCKED)
    RETURNING id`);
  if (claimed.rows.length === 0) return [];
  const rows = await db.query.billingSync.findMany({
    where: (t, { inArray }) =>
      inArray(
        t.id,
        claimed.rows.map((r) => r.id),
      ),
  });
  return rows.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
}

/** Records a row's outcome on the row and, if it is still the tenant's latest, on the tenant. */
async function settle(db: Db, row: BillingSyncRow, outcome: Outcome, now: number): Promise<void> {
  const error = outcome.kind === "ok" ? null : outcome.error;
  await db.transaction(async (tx) => {
    const [still] = await tx
      .update(billingSync)
      .set(
        outcome.kind === "retry"
          ? {
              nextAttemptAt: new Date(now + Math.min(MAX_BACKOFF_MS, 1000 * 2 ** row.attempts)),
              lastError: error,
            }
          : { state: outcome.kind, lastError: error, doneAt: new Date(now) },
      )
      .where(and(eq(billingSync.id, row.id), eq(billingSync.state, "pending")))
      .returning({ id: billingSync.id });
    if (!still) return; // superseded meanwhile: the newer row speaks for the tenant
    await tx
      .update(tenants)
      .set({ billingSync: outcome.kind === "retry" ? "pending" : outcome.kind, billingError: error })
      .where(eq(tenants.id, row.tenantId));
  });
  if (outcome.kind === "failed")
    log.error("billing sync failed", { tenant_id: row.tenantId, sync_id: row.id, error: outcome.error });
  else if (outcome.kind === "retry")
    log.warn("billing sync will retry", { tenant_id: row.tenantId, sync_id: row.id, error: outcome.error });
}

export interface SyncSummary {
  enabled: boolean;
  ok: number;
  retrying: number;
  failed: number;
}

/**
 * Applies due rows: `ids` (the rows a request just wrote), or up to `SYNC_BATCH` of the oldest
 * due ones (the cron). Never throws for a Stripe failure: the row keeps it.
 */
export async function syncBilling(
  env: Bindings,
  db: Db,
  options: { ids?: string[]; now?: number } = {},
): Promise<SyncSummary> {
  const now = options.now ?? Date.now();
  const summary: SyncSummary = { enabled: false, ok: 0, retrying: 0, failed: 0 };
  const stripe = stripeClient(env);
  if (!stripe) {
    const error = "Stripe is not configured (STRIPE_SECRET_KEY is not set)";
    for (const id of options.ids ?? []) {
      const [row] = await db
        .update(billingSync)
        .set({ lastError: error })
        .where(eq(billingSync.id, id))
        .returning({ tenantId: billingSync.tenantId });
      if (row) await db.update(tenants).set({ billingError: error }).where(eq(tenants.id, row.tenantId));
    }
    return summary;
  }
  summary.enabled = true;
  const rows = await claim(db, now, options.ids ? options.ids.length : SYNC_BATCH, options.ids);
  for (const row of rows) {
    // One sync at a time per tenant: two running at once (a plan change while the cron applies an
    // older one) could leave Stripe on the one that finished last, not on the latest.
    const locked = await db.execute(sql`
      UPDATE tenants SET billing_locked_until = now() + make_interval(secs => ${CLAIM_MS / 1000})
      WHERE id = ${row.tenantId} AND (billing_locked_until IS NULL OR billing_locked_until <= now())
      RETURNING id`);
    if (locked.rows.length === 0) {
      summary.retrying++;
      await settle(db, row, { kind: "retry", error: "another billing sync of this tenant is running" }, now);
      continue;
    }
    let outcome: Outcome = { kind: "ok" };
    try {
      // A row superseded while it waited is left alone: the newer row speaks for the tenant.
      const current = await db.query.billingSync.findFirst({ where: eq(billingSync.id, row.id) });
      if (current?.state === "pending") await apply(stripe, env, db, row);
    } catch (error) {
      outcome = outcomeOf(error);
    } finally {
      await db.update(tenants).set({ billingLockedUntil: null }).where(eq(tenants.id, row.tenantId));
    }
    summary[outcome.kind === "ok" ? "ok" : outcome.kind === "retry" ? "retrying" : "failed"]++;
    await settle(db, row, outcome, now);
  }
  return summary;
}

/** The cron's run: the oldest due rows, at most `SYNC_BATCH`, on a connection of its own. */
export async function syncBillingDue(env: Bindings, now: number = Date.now()): Promise<SyncSummary> {
  const handle = openDb(env);
  try {
    return await syncBilling(env, handle.db, { now });
  } finally {
    await handle.close();
  }
}

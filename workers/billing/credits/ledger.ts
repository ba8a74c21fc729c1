/**
 * Writing the credit ledger and reaching the tenant object with it. One rule for every entry that
 * moves the object's balance (grant, refund, adjustment): the Postgres row first (committed), then
 * the object's `grantCredits` under the row's id, then `applied_at`. The object's grant is idempotent
 * on that id, so a crash or an unreachable object between the steps is healed by `repairCredits`
 * (the cron) re-applying every row without `applied_at`: a grant reaches the object exactly once.
 */
import { and, eq, isNull, lt, ne, sql } from "drizzle-orm";
import { type CreditEntry, creditLedger } from "../../../schema";
import type { Bindings } from "../../env";
import { log } from "../../log";
import type { Db } from "../../shared/db";
import { grantCredits } from "../../shared/tenant-client";

type TenantEnv = Pick<Bindings, "TENANT">;

/** A row the object must apply: grants, refunds and adjustments (usage is spent there already). */
export type BalanceEntry = Omit<typeof creditLedger.$inferInsert, "appliedAt" | "createdAt">;

export type ApplyResult =
  | { outcome: "applied" | "duplicate"; entry: CreditEntry; balance: number }
  /** A debit larger than the balance: the row is withdrawn, nothing changed. */
  | { outcome: "insufficient"; balance: number }
  /** The object could not be reached: the row stays, the cron applies it. */
  | { outcome: "pending"; entry: CreditEntry };

/** Rows younger than this are left to the request that wrote them. */
const REPAIR_AFTER_MS = 60_000;
const REPAIR_BATCH = 100;

/**
 * Records `entry` (a row with the same id already there is kept: `duplicate` when it was applied)
 * and applies it to the tenant object in the same request.
 */
export async function recordAndApply(
  env: TenantEnv,
  db: Db,
  entry: BalanceEntry,
  now: number = Date.now(),
): Promise<ApplyResult> {
  const inserted = await db
    .insert(creditLedger)
    .values({ ...entry, createdAt: new Date(now) })
    .onConflictDoNothing()
    .returning();
  const row = inserted[0] ?? (await db.select().from(creditLedger).where(eq(creditLedger.id, entry.id)))[0];
  if (!row) throw new Error(`credit ledger row ${entry.id} vanished`);
  return await apply(env, db, row, inserted.length === 0);
}

async function apply(env: TenantEnv, db: Db, row: CreditEntry, existed: boolean): Promise<ApplyResult> {
  let result: Awaited<ReturnType<typeof grantCredits>>;
  try {
    result = await grantCredits(env, row.tenantId, { id: row.id, units: row.units });
  } catch (error) {
    log.error("credit grant not applied yet", {
      tenant_id: row.tenantId,
      entry: row.id,
      error: String(error),
    });
    return { outcome: "pending", entry: row };
  }
  if (result.outcome === "insufficient") {
    // Never applied, so nothing to undo in the object: the row goes, the balance stays.
    await db.delete(creditLedger).where(and(eq(creditLedger.id, row.id), isNull(creditLedger.appliedAt)));
    return { outcome: "insufficient", balance: result.balance };
  }
  const appliedAt = row.appliedAt ?? new Date();
  if (!row.appliedAt) await db.update(creditLedger).set({ appliedAt }).where(eq(creditLedger.id, row.id));
  return {
    outcome: existed && row.appliedAt ? "duplicate" : "applied",
    entry: { ...row, appliedAt },
    balance: result.balance,
  };
}

/** The cron's repair step: applies every balance row the object has not confirmed. Returns how many. */
export async function repairCredits(env: TenantEnv, db: Db, now: number = Date.now()): Promise<number> {
  const rows = await db
    .select()
    .from(creditLedger)
    .where(
      and(
        isNull(creditLedger.appliedAt),
        ne(creditLedger.kind, "usage"),
        lt(creditLedger.createdAt, new Date(now - REPAIR_AFTER_MS)),
      ),
    )
    .orderBy(creditLedger.createdAt)
    .limit(REPAIR_BATCH);
  let repaired = 0;
  for (const row of rows) {
    const result = await apply(env, db, row, true);
    if (result.outcome !== "pending") repaired++;
  }
  return repaired;
}

/** Whether the tenant's plan is prepaid (credits apply only then). */
export async function isPrepaid(db: Db, tenantId: string): Promise<boolean> {
  const rows = await db.execute<{ prepaid: boolean }>(sql`
    SELECT p.pricing->>'model' = 'prepaid' AS prepaid FROM tenants t JOIN plans p ON p.id = t.plan_id
    WHERE t.id = ${tenantId}`);
  return rows.rows[0]?.prepaid === true;
}

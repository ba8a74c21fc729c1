/**
 * The credit balance and ledger as the admin and tenant APIs show them: the balance from the tenant
 * object (the live one), the ledger page from Postgres, newest first. The tenant API reads the
 * ledger through `withTenant` (row-level security), the admin API as the operator.
 */
import { z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import { type CreditEntry, creditLedger } from "../../schema";
import type { Bindings } from "../env";
import type { Db, Tx } from "../shared/db";
import { creditBalance } from "../shared/tenant-client";
import { keyset, pageOf } from "./pagination";

export const CreditEntrySchema = z
  .object({
    id: z.string(),
    kind: z.enum(["grant", "usage", "refund", "adjustment"]),
    units: z.number().int().openapi({ description: "Signed: what the entry adds to the balance." }),
    amount: z.number().int().nullable().openapi({ description: "Paid, in the currency's minor unit." }),
    currency: z.string().nullable(),
    stripeCheckoutSessionId: z.string().nullable(),
    hour: z.string().nullable().openapi({ description: "The hour a usage entry settles." }),
    reason: z.string().nullable(),
    actor: z.string().nullable(),
    appliedAt: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi("CreditEntry");

export const CreditsSchema = z
  .object({
    balance: z.number().int().openapi({ description: "Units left, as the tenant's requests are charged." }),
    held: z.number().int().openapi({
      description:
        "Units held by requests of the last few minutes (already taken from the balance) that are given back if they turn out not billable.",
    }),
    ledger: pageOf(CreditEntrySchema),
  })
  .openapi("Credits");

export function creditEntryOut(e: CreditEntry): z.infer<typeof CreditEntrySchema> {
  return {
    id: e.id,
    kind: e.kind,
    units: e.units,
    amount: e.amount,
    currency: e.currency,
    stripeCheckoutSessionId: e.stripeCheckoutSessionId,
    hour: e.hour?.toISOString() ?? null,
    reason: e.reason,
    actor: e.actor,
    appliedAt: e.appliedAt?.toISOString() ?? null,
    createdAt: e.createdAt.toISOString(),
  };
}

/** One page of a tenant's ledger, newest first. */
export async function ledgerPage(
  db: Db | Tx,
  tenantId: string,
  query: { limit: number; cursor?: string | undefined },
) {
  const page = keyset("credits", creditLedger, query, "desc");
  const where = eq(creditLedger.tenantId, tenantId);
  const rows = await db
    .select({ row: creditLedger, position: page.position })
    .from(creditLedger)
    .where(page.where ? and(where, page.where) : where)
    .orderBy(...page.orderBy)
    .limit(page.take);
  return page.page(rows, creditEntryOut, (e) => e.id);
}

/** Balance (from the tenant object) and a ledger page. */
export async function creditsView(
  env: Pick<Bindings, "TENANT">,
  db: Db | Tx,
  tenantId: string,
  query: { limit: number; cursor?: string | undefined },
): Promise<z.infer<typeof CreditsSchema>> {
  const [{ balance, held }, ledger] = await Promise.all([
    creditBalance(env, tenantId),
    ledgerPage(db, tenantId, query),
  ]);
  return { balance, held, ledger };
}

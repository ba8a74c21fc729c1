/**
 * Pruning the audit logs without breaking their hash chains: each chain loses only a prefix, oldest
 * seq first, and in the same transaction `audit.chains` records the seq and hash of the last entry
 * pruned (`pruned_seq`, `pruned_head`). The first remaining entry's `prev_hash` is that hash, so
 * `verifyEntries(log, remaining, { [chain]: pruned_head })` still proves what is left unedited.
 *
 * Why a prefix and not every expired row: seq order is append order, and the request log is
 * appended by the usage pipeline, where a late batch can land after younger requests. An expired
 * entry behind a younger one waits until that one expires too; nothing younger than the cutoff is
 * ever removed, and the chain never gets a hole.
 */
import { sql } from "drizzle-orm";
import type { AuditLog } from "../audit/chain";
import type { Db } from "../shared/db";

const TABLE: Record<AuditLog, string> = { action: "actions", request: "requests" };

/** Chains looked up per round: each then costs one bounded delete. */
const CHAINS_PER_ROUND = 100;

/**
 * Chains of `log` whose oldest remaining entry is older than `cutoff`: one primary-key probe per
 * chain (`seq = pruned_seq + 1`), so an idle run reads no entry beyond each chain's first.
 */
export async function expiredChains(db: Db, log: AuditLog, cutoff: Date): Promise<string[]> {
  const result = await db.execute<{ chain: string }>(sql`
    SELECT c.chain FROM audit.chains c
    WHERE c.log = ${log} AND c.pruned_seq < c.seq
      AND EXISTS (SELECT 1 FROM ${sql.identifier("audit")}.${sql.identifier(TABLE[log])} e
        WHERE e.chain = c.chain AND e.seq = c.pruned_seq + 1 AND e.occurred_at < ${cutoff})
    ORDER BY c.chain LIMIT ${CHAINS_PER_ROUND}`);
  return result.rows.map((r) => r.chain);
}

/**
 * Prunes the expired prefix of one chain, at most `limit` entries, under the chain's row lock (the
 * lock appends take, so an append waits for this short transaction). Returns how many it deleted.
 */
export async function pruneChain(
  db: Db,
  log: AuditLog,
  chain: string,
  cutoff: Date,
  limit: number,
): Promise<number> {
  const table = sql`${sql.identifier("audit")}.${sql.identifier(TABLE[log])}`;
  return await db.transaction(async (tx) => {
    const head = await tx.execute<{ pruned_seq: string | number }>(sql`
      SELECT pruned_seq FROM audit.chains WHERE chain = ${chain} AND log = ${log} FOR UPDATE`);
    const row = head.rows[0];
    if (!row) return 0;
    const prunedSeq = Number(row.pruned_seq);
    // The last entry of the run of expired entries that starts the chain (at most `limit` long).
    const last = await tx.execute<{ seq: string | number; hash: string }>(sql`
      WITH next AS (
        SELECT seq, occurred_at, hash FROM ${table}
        WHERE chain = ${chain} AND seq > ${prunedSeq} ORDER BY seq LIMIT ${limit}
      )
      SELECT seq, hash FROM next n
      WHERE NOT EXISTS (SELECT 1 FROM next y WHERE y.seq <= n.seq AND y.occurred_at >= ${cutoff})
      ORDER BY seq DESC LIMIT 1`);
    const end = last.rows[0];
    if (!end) return 0;
    const deleted = await tx.execute(sql`
      DELETE FROM ${table} WHERE chain = ${chain} AND seq > ${prunedSeq} AND seq <= ${Number(end.seq)}`);
    await tx.execute(sql`
      UPDATE audit.chains SET pruned_seq = ${Number(end.seq)}, pruned_head = ${end.hash}
      WHERE chain = ${chain} AND log = ${log}`);
    return deleted.rowCount ?? 0;
  });
}

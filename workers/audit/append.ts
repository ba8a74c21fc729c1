/**
 * Appending to an audit chain, inside the caller's transaction: lock the chain's head row (so two
 * writers of the same chain take turns and seqs never race), hash each entry onto the head, insert
 * them, move the head. Entries of one call land in the order given.
 *
 * Lock order: a caller appending to several chains in one transaction must do so in sorted chain
 * order (`appendToChains` does), so two transactions never wait on each other's chains.
 */
import { sql } from "drizzle-orm";
import type { Db, Tx } from "../shared/db";
import { type ActionContent, type AuditLog, entryHash, GENESIS, type RequestContent } from "./chain";

type Content<L extends AuditLog> = L extends "action" ? ActionContent : RequestContent;

/** Locks (creating if need be) the head row of `chain` in `log`; returns its seq and head hash. */
async function lockHead(tx: Db | Tx, log: AuditLog, chain: string): Promise<{ seq: number; head: string }> {
  await tx.execute(sql`
    INSERT INTO audit.chains (chain, log, seq, head, pruned_seq, pruned_head)
    VALUES (${chain}, ${log}, 0, ${GENESIS}, 0, ${GENESIS})
    ON CONFLICT (chain, log) DO NOTHING`);
  const row = await tx.execute<{ seq: string | number; head: string }>(sql`
    SELECT seq, head FROM audit.chains WHERE chain = ${chain} AND log = ${log} FOR UPDATE`);
  const head = row.rows[0];
  if (!head) throw new Error(`audit chain ${chain}/${log} could not be locked`);
  return { seq: Number(head.seq), head: head.head };
}

/**
 * Appends `entries` (all of the same chain, `entries[i].chain`) to `log`. For the request log,
 * pass only requests not yet recorded (the caller filters redeliveries under this same lock: see
 * `unrecordedRequests`).
 */
async function appendToChain<L extends AuditLog>(
  tx: Db | Tx,
  log: L,
  chain: string,
  entries: readonly Content<L>[],
) {
  let { seq, head } = await lockHead(tx, log, chain);
  const rows: Array<Content<L> & { seq: number; prevHash: string; hash: string }> = [];
  for (const entry of entries) {
    seq += 1;
    const hash = await entryHash(log, seq, head, entry);
    rows.push({ ...entry, seq, prevHash: head, hash });
    head = hash;
  }
  if (rows.length === 0) return;
  if (log === "action") {
    await tx.execute(sql`
      INSERT INTO audit.actions (chain, seq, occurred_at, actor_type, actor_id, action, targets, changes,
        request_id, client_ip, user_agent, prev_hash, hash)
      SELECT chain, seq, "occurredAt", "actorType", "actorId", action, targets, changes, "requestId", "clientIp",
        "userAgent", "prevHash", hash
      FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS r(chain text, seq bigint, "occurredAt" timestamptz,
        "actorType" text, "actorId" text, action text, targets jsonb, changes jsonb, "requestId" text, "clientIp" text,
        "userAgent" text, "prevHash" text, hash text)`);
  } else {
    // The request log takes thousands of entries per usage batch: one array per column (unnest),
    // as the usage sink does, not a JSON document (measured: ~2x faster for 5,000 entries).
    const requests = rows as unknown as Array<
      RequestContent & { seq: number; prevHash: string; hash: string }
    >;
    const col = <K extends keyof (typeof requests)[number]>(k: K) => sql.param(requests.map((r) => r[k]));
    await tx.execute(sql`
      INSERT INTO audit.requests (chain, seq, request_id, occurred_at, key_id, method, route, status, client_ip,
        user_agent, prev_hash, hash)
      SELECT * FROM unnest(${col("chain")}::text[], ${col("seq")}::bigint[], ${col("requestId")}::text[],
        ${col("occurredAt")}::timestamptz[], ${col("keyId")}::text[], ${col("method")}::text[], ${col("route")}::text[],
        ${col("status")}::int[], ${col("clientIp")}::text[], ${col("userAgent")}::text[], ${col("prevHash")}::text[],
        ${col("hash")}::text[])`);
  }
  await tx.execute(
    sql`UPDATE audit.chains SET seq = ${seq}, head = ${head} WHERE chain = ${chain} AND log = ${log}`,
  );
}

/** Appends entries of any chains to `log`, chain by chain in sorted order (a fixed lock order). */
export async function appendToChains<L extends AuditLog>(
  tx: Db | Tx,
  log: L,
  entries: readonly Content<L>[],
): Promise<void> {
  const byChain = new Map<string, Content<L>[]>();
  for (const e of entries) byChain.set(e.chain, [...(byChain.get(e.chain) ?? []), e]);
  for (const chain of [...byChain.keys()].sort())
    await appendToChain(tx, log, chain, byChain.get(chain) ?? []);
}

/**
 * The requests of `entries` not yet in the request log. Call it after the chains are locked, or
 * (simpler) in the same transaction as `appendToChains` with the same entries: a redelivered batch
 * then appends nothing. Here it locks the chains itself, in the same sorted order.
 */
export async function unrecordedRequests(
  tx: Db | Tx,
  entries: readonly RequestContent[],
): Promise<RequestContent[]> {
  if (entries.length === 0) return [];
  for (const chain of [...new Set(entries.map((e) => e.chain))].sort()) await lockHead(tx, "request", chain);
  const seen = await tx.execute<{ request_id: string }>(sql`
    SELECT request_id FROM audit.requests WHERE request_id = ANY (${sql.param(entries.map((e) => e.requestId))}::text[])`);
  const recorded = new Set(seen.rows.map((r) => r.request_id));
  const fresh = new Map<string, RequestContent>();
  for (const e of entries) if (!recorded.has(e.requestId)) fresh.set(e.requestId, e);
  return [...fresh.values()];
}

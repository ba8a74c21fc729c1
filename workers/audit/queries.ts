/**
 * The audit trail's read side: listing entries (newest first, keyset pages), streaming an export
 * (chain by chain, seq ascending, so it verifies), and verifying chains from the database.
 *
 * Tenant-facing reads run under `withTenant` (row-level security keyed on the chain); the admin API
 * reads every chain. An export or a verification over a time range covers, per chain, the unbroken
 * run of seqs from the first entry at or after `from` to the last entry before `to`: entries are
 * appended in seq order but their times come from the request that made them (a late usage batch
 * lands after younger entries), so a pure time filter could leave holes that read as deletions.
 */
import { type SQL, sql } from "drizzle-orm";
import type { Bindings } from "../env";
import { log as logger } from "../log";
import { type Db, openDb, type Tx, withTenant } from "../shared/db";
import {
  type ActionContent,
  type AuditLog,
  type ChainedEntry,
  GENESIS,
  type RequestContent,
  verifyEntries,
} from "./chain";

/** What every entry the read APIs and the NDJSON export give carries besides its content. */
interface Chained {
  seq: number;
  prevHash: string;
  hash: string;
}

/** An action entry as the read APIs and the NDJSON export give it: every hashed field, seq and both hashes. */
export type ActionEntry = { log: "action" } & ActionContent &
  Chained & {
    targets: Array<{ type: string; id: string }>;
    changes: Record<string, { before: unknown; after: unknown }>;
  };

/** A request entry as the read APIs and the NDJSON export give it. */
export type RequestEntry = { log: "request" } & RequestContent & Chained;

export type AuditEntry = ActionEntry | RequestEntry;

/** What narrows a list, an export or a verification. */
export interface AuditFilters {
  /** A tenant id, or `_operator`. */
  chain?: string | undefined;
  /** The actor id (action log) or the key id (request log). */
  actor?: string | undefined;
  /** The dotted verb (action log only). */
  action?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

/** Rows per export page and per verification page: memory stays bounded however long the chain. */
const PAGE_SIZE = 1000;

/**
 * The most entries one verification recomputes: a larger range is refused, not cut. Measured in workerd
 * on a busy 2-core machine: about 80 µs of hashing per entry, so up to ~8 s of CPU at the cap.
 */
export const VERIFY_MAX_ENTRIES = 100_000;

const TABLE = { action: sql.raw("audit.actions"), request: sql.raw("audit.requests") } as const;

/** Times as the hash takes them: ISO 8601, UTC, milliseconds (the column holds no finer). */
const OCCURRED_AT = sql.raw(`to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);

const COLUMNS = {
  action: sql`chain, seq, ${OCCURRED_AT} AS occurred_at, actor_type, actor_id, action, targets,
    changes, request_id, client_ip, user_agent, prev_hash, hash`,
  request: sql`chain, seq, request_id, ${OCCURRED_AT} AS occurred_at, key_id, method, route, status,
    client_ip, user_agent, prev_hash, hash`,
} as const;

type Row = Record<string, unknown>;

const str = (v: unknown) => String(v);
const strOrNull = (v: unknown) => (v === null || v === undefined ? null : String(v));
/** jsonb as the driver hands it: parsed already, or (some drivers) as text. */
const parsed = <T>(v: unknown) => (typeof v === "string" ? JSON.parse(v) : v) as T;

function entryOf(log: AuditLog, r: Row): AuditEntry {
  const common = { chain: str(r.chain), seq: Number(r.seq), occurredAt: str(r.occurred_at) };
  const tail = {
    clientIp: strOrNull(r.client_ip),
    userAgent: strOrNull(r.user_agent),
    prevHash: str(r.prev_hash),
    hash: str(r.hash),
  };
  if (log === "action") {
    return {
      log,
      ...common,
      actorType: str(r.actor_type),
      actorId: str(r.actor_id),
      action: str(r.action),
      targets: parsed<ActionEntry["targets"]>(r.targets),
      changes: parsed<ActionEntry["changes"]>(r.changes),
      requestId: strOrNull(r.request_id),
      ...tail,
    };
  }
  return {
    log,
    chain: common.chain,
    seq: common.seq,
    requestId: str(r.request_id),
    occurredAt: common.occurredAt,
    keyId: str(r.key_id),
    method: str(r.method),
    route: str(r.route),
    status: Number(r.status),
    ...tail,
  };
}

function conditions(log: AuditLog, f: AuditFilters): SQL[] {
  const where: SQL[] = [];
  if (f.chain !== undefined) where.push(sql`chain = ${f.chain}`);
  if (f.actor !== undefined)
    where.push(log === "action" ? sql`actor_id = ${f.actor}` : sql`key_id = ${f.actor}`);
  if (f.action !== undefined && log === "action") where.push(sql`action = ${f.action}`);
  if (f.from) where.push(sql`occurred_at >= ${f.from.toISOString()}::timestamptz`);
  if (f.to) where.push(sql`occurred_at < ${f.to.toISOString()}::timestamptz`);
  return where;
}

const whereOf = (parts: (SQL | undefined)[]) => {
  const present = parts.filter((p): p is SQL => p !== undefined);
  return present.length === 0 ? sql`` : sql`WHERE ${sql.join(present, sql` AND `)}`;
};

/** One page of a keyset list: rows with their position, and how to turn them into the answer. */
export interface ListPage {
  where: SQL | undefined;
  orderBy: SQL[];
  position: SQL<string>;
  take: number;
  page<R, O>(
    rows: { row: R; position: string }[],
    out: (row: R) => O,
    id: (row: R) => string,
  ): { data: O[]; next_cursor: string | null };
}

/** The keyset position of an entry: its time, then chain and seq (unique, and ordered as text). */
export const LIST_ID = sql`(chain || '/' || lpad(seq::text, 20, '0'))`;
export const LIST_TIME = sql`occurred_at`;
const listId = (e: AuditEntry) => `${e.chain}/${String(e.seq).padStart(20, "0")}`;

/**
 * A page of `log`'s entries matching `filters`, newest first. `tx` is the admin's connection, or a
 * tenant's transaction under `withTenant` (then row-level security limits it to that tenant's chain).
 */
export async function listEntries(
  tx: Db | Tx,
  log: AuditLog,
  filters: AuditFilters,
  page: ListPage,
): Promise<{ data: AuditEntry[]; next_cursor: string | null }> {
  const result = await tx.execute<Row & { position: string }>(sql`
    SELECT ${COLUMNS[log]}, ${page.position} AS position
    FROM ${TABLE[log]}
    ${whereOf([...conditions(log, filters), page.where])}
    ORDER BY ${sql.join(page.orderBy, sql`, `)}
    LIMIT ${page.take}`);
  const rows = result.rows.map((r) => ({ row: entryOf(log, r), position: String(r.position) }));
  return page.page(rows, (e) => e, listId);
}

/** Per chain, the run of seqs a time range covers (see the header), ordered by chain. */
async function seqRuns(
  tx: Db | Tx,
  log: AuditLog,
  filters: AuditFilters,
): Promise<{ chain: string; lo: number; hi: number }[]> {
  const result = await tx.execute<{ chain: string; lo: string; hi: string }>(sql`
    SELECT chain, min(seq)::text AS lo, max(seq)::text AS hi
    FROM ${TABLE[log]}
    ${whereOf(conditions(log, { chain: filters.chain, from: filters.from, to: filters.to }))}
    GROUP BY chain ORDER BY chain`);
  return result.rows.map((r) => ({ chain: r.chain, lo: Number(r.lo), hi: Number(r.hi) }));
}

/** Entries `lo`..`hi` of one chain after `after`, seq ascending, at most `limit`. */
async function chainPage(
  tx: Db | Tx,
  log: AuditLog,
  chain: string,
  after: number,
  hi: number,
  limit = PAGE_SIZE,
): Promise<AuditEntry[]> {
  const result = await tx.execute<Row>(sql`
    SELECT ${COLUMNS[log]} FROM ${TABLE[log]}
    WHERE chain = ${chain} AND seq > ${after} AND seq <= ${hi}
    ORDER BY seq LIMIT ${limit}`);
  return result.rows.map((r) => entryOf(log, r));
}

/** The CSV columns of each log's export (the NDJSON lines carry the same fields, camelCased, plus `log`). */
export const CSV_COLUMNS = {
  action: [
    "log",
    "chain",
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "action",
    "targets",
    "changes",
    "request_id",
    "client_ip",
    "user_agent",
    "prev_hash",
    "hash",
  ],
  request: [
    "log",
    "chain",
    "seq",
    "request_id",
    "occurred_at",
    "key_id",
    "method",
    "route",
    "status",
    "client_ip",
    "user_agent",
    "prev_hash",
    "hash",
  ],
} as const;

/** A cell a spreadsheet would run as a formula: user agents and targets come from clients. */
const FORMULA = /^[=+\-@\t\r]/;

function csvField(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = typeof value === "object" ? JSON.stringify(value) : String(value);
  // OWASP's CSV-injection advice: a leading `'` keeps a spreadsheet from running the cell.
  const safe = FORMULA.test(text) ? `'${text}` : text;
  return /[",\n\r]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

const snake = (name: string) => name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

function formatEntry(e: AuditEntry, format: "csv" | "ndjson"): string {
  if (format === "ndjson") return `${JSON.stringify(e)}\n`;
  const byColumn = Object.fromEntries(Object.entries(e).map(([k, v]) => [snake(k), v]));
  return `${CSV_COLUMNS[e.log].map((c) => csvField(byColumn[c])).join(",")}\n`;
}

/**
 * Streams `log`'s entries (one tenant's when `tenantId` is set: under its row-level security) as CSV
 * or NDJSON, chain by chain in seq order, a page of 1,000 at a time. The runs of seqs are fixed when
 * the stream starts, so entries appended meanwhile are left for the next export. The stream opens
 * (and closes) its own connection, since it outlives the request handler.
 */
export function exportEntries(
  env: Bindings,
  tenantId: string | null,
  log: AuditLog,
  filters: AuditFilters,
  format: "csv" | "ndjson",
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let handle: ReturnType<typeof openDb> | undefined;
  let runs: { chain: string; lo: number; hi: number }[] | null = null;
  let at = { run: 0, after: 0 };
  let done = false;
  const scoped = <T>(fn: (tx: Db | Tx) => Promise<T>): Promise<T> => {
    if (!handle) throw new Error("the export's connection is closed");
    return tenantId === null ? fn(handle.db) : withTenant(handle.db, tenantId, fn);
  };
  const finish = async () => {
    done = true;
    await handle?.close();
  };
  return new ReadableStream<Uint8Array>({
    start(controller) {
      handle = openDb(env);
      if (format === "csv") controller.enqueue(encoder.encode(`${CSV_COLUMNS[log].join(",")}\n`));
    },
    async pull(controller) {
      if (done) return;
      try {
        if (runs === null) {
          runs = await scoped((tx) => seqRuns(tx, log, filters));
          at = { run: 0, after: (runs[0]?.lo ?? 1) - 1 };
        }
        const run = runs[at.run];
        if (!run) {
          controller.close();
          await finish();
          return;
        }
        const entries = await scoped((tx) => chainPage(tx, log, run.chain, at.after, run.hi));
        if (entries.length > 0) {
          controller.enqueue(encoder.encode(entries.map((e) => formatEntry(e, format)).join("")));
          at.after = (entries[entries.length - 1] as AuditEntry).seq;
        }
        if (entries.length < PAGE_SIZE || at.after >= run.hi) {
          const next = runs[at.run + 1];
          at = { run: at.run + 1, after: (next?.lo ?? 1) - 1 };
        }
      } catch (error) {
        logger.error("audit export failed", { tenant_id: tenantId ?? "", error: String(error) });
        controller.error(error);
        await finish();
      }
    },
    async cancel() {
      await finish();
    },
  });
}

/** What a verification found: `brokenAt` names the first entry that does not hold. */
export interface AuditVerification {
  ok: boolean;
  log: AuditLog;
  entries: number;
  chains: number;
  brokenAt?: { chain: string; seq: number };
  reason?: string;
}

/** A range too large to verify in one request: the caller narrows it (tenant, from, to). */
export class VerifyRangeTooLarge extends Error {
  constructor(readonly entries: number) {
    super(`the range holds ${entries} entries; one verification checks at most ${VERIFY_MAX_ENTRIES}`);
  }
}

interface ChainHead {
  chain: string;
  seq: number;
  head: string;
  prunedSeq: number;
  prunedHead: string;
}

/**
 * Recomputes `log`'s chains (one chain with `filters.chain`) over a range from the database, with
 * `verifyEntries`. Without `from` each chain is checked from its first kept entry, which must link
 * to the anchor retention left (`pruned_head`, GENESIS when nothing was pruned); with `from`, from
 * the first entry at or after it (anchored too when that is the first kept entry). Without `to`, up
 * to the chain's head, whose hash must be the head recorded in `audit.chains` (so deleting the
 * newest entries shows). Gaps, edited rows and reordered hashes all break it. Reads a page of 1,000
 * at a time; throws `VerifyRangeTooLarge` before hashing anything when the range holds more than
 * `VERIFY_MAX_ENTRIES`.
 */
export async function verifyRange(db: Db, log: AuditLog, filters: AuditFilters): Promise<AuditVerification> {
  // Heads first: entries up to a head's seq were committed with it, so appends that land while we
  // read are simply past the range.
  const heads = await db.execute<{
    chain: string;
    seq: string;
    head: string;
    pruned_seq: string;
    pruned_head: string;
  }>(sql`
    SELECT chain, seq, head, pruned_seq::text AS pruned_seq, pruned_head FROM audit.chains
    WHERE log = ${log} ${filters.chain === undefined ? sql`` : sql`AND chain = ${filters.chain}`}
    ORDER BY chain`);
  const byChain = new Map<string, ChainHead>(
    heads.rows.map((h) => [
      h.chain,
      {
        chain: h.chain,
        seq: Number(h.seq),
        head: h.head,
        prunedSeq: Number(h.pruned_seq),
        prunedHead: h.pruned_head,
      },
    ]),
  );
  const ranged = filters.from !== undefined || filters.to !== undefined;
  const runs = ranged ? await seqRuns(db, log, filters) : [];
  const plan: { head: ChainHead; lo: number; hi: number; anchored: boolean; toHead: boolean }[] = [];
  if (ranged) {
    for (const r of runs) {
      const head = byChain.get(r.chain);
      // A row without a head row was never appended by the gateway: it cannot be anchored.
      const h = head ?? { chain: r.chain, seq: r.hi, head: "", prunedSeq: 0, prunedHead: GENESIS };
      const lo = filters.from === undefined ? h.prunedSeq + 1 : r.lo;
      const hi = filters.to === undefined ? h.seq : Math.min(r.hi, h.seq);
      plan.push({ head: h, lo, hi, anchored: lo === h.prunedSeq + 1, toHead: filters.to === undefined });
    }
  } else {
    for (const h of byChain.values())
      plan.push({ head: h, lo: h.prunedSeq + 1, hi: h.seq, anchored: true, toHead: true });
  }
  const total = plan.reduce((n, p) => n + Math.max(0, p.hi - p.lo + 1), 0);
  if (total > VERIFY_MAX_ENTRIES) throw new VerifyRangeTooLarge(total);

  let entries = 0;
  const broken = (chain: string, seq: number, reason: string): AuditVerification => ({
    ok: false,
    log,
    entries,
    chains: plan.length,
    brokenAt: { chain, seq },
    reason,
  });
  for (const p of plan) {
    const chain = p.head.chain;
    let prev: { seq: number; hash: string } | null = p.anchored
      ? { seq: p.lo - 1, hash: p.head.prunedHead }
      : null;
    let after = p.lo - 1;
    while (after < p.hi) {
      const page = await chainPage(db, log, chain, after, p.hi);
      const first = page[0];
      if (!first) break;
      if (prev && first.seq !== prev.seq + 1)
        return broken(chain, first.seq, `seq ${first.seq} follows ${prev.seq}: entries are missing`);
      const result = await verifyEntries(
        log,
        page as unknown as ChainedEntry[],
        prev ? { [chain]: prev.hash } : {},
      );
      if (!result.ok) {
        entries += result.brokenAt.seq - first.seq;
        return broken(result.brokenAt.chain, result.brokenAt.seq, result.reason);
      }
      entries += page.length;
      const last = page[page.length - 1] as AuditEntry;
      prev = { seq: last.seq, hash: last.hash };
      after = last.seq;
      if (page.length < PAGE_SIZE) break;
    }
    if (p.hi >= p.lo && after < p.hi)
      return broken(
        chain,
        after + 1,
        `entries ${after + 1}-${p.hi} are missing (the chain ${p.toHead ? "head" : "range"} ends at seq ${p.hi})`,
      );
    if (p.toHead && p.hi > p.head.prunedSeq && prev?.hash !== p.head.head)
      return broken(chain, p.hi, "the newest entry's hash is not the chain's recorded head");
  }
  return { ok: true, log, entries, chains: plan.length };
}

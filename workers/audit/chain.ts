/**
 * The audit trail's hash chain, pure: how an entry's hash is computed from the previous entry's
 * hash and the entry's own content, and how a run of entries is checked. The Worker appends with
 * it, `GET /admin/v1/audit/verify` and `gw audit verify` (on an exported file) check with it — one
 * definition, so an export verifies anywhere.
 *
 * hash = hex(SHA-256(prev_hash + "\n" + canonical(entry))), where canonical is the JSON array of the
 * entry's fields in a fixed order (below), with times as ISO 8601 in UTC to the millisecond.
 * The first entry of a chain links to GENESIS.
 */

/** The `prev_hash` of a chain's first entry. */
export const GENESIS = "0".repeat(64);

/** The chain of actions that belong to no tenant (a plan created, an operator's sign-in). */
export const OPERATOR_CHAIN = "_operator";

export type AuditLog = "action" | "request";

/** An action entry's hashed content (everything but seq, prev_hash and hash). */
export interface ActionContent {
  chain: string;
  occurredAt: string;
  actorType: string;
  actorId: string;
  action: string;
  targets: unknown;
  changes: unknown;
  requestId: string | null;
  clientIp: string | null;
  userAgent: string | null;
}

/** A request entry's hashed content. */
export interface RequestContent {
  chain: string;
  requestId: string;
  occurredAt: string;
  keyId: string;
  method: string;
  route: string;
  status: number;
  clientIp: string | null;
  userAgent: string | null;
}

/** JSON with object keys sorted at every depth, so `targets` and `changes` hash the same however built. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

/** The canonical text of an entry of `log`, with its seq. */
export function canonical(log: AuditLog, seq: number, entry: ActionContent | RequestContent): string {
  const iso = (t: string) => new Date(t).toISOString();
  if (log === "action") {
    const a = entry as ActionContent;
    return stableJson([
      "action",
      a.chain,
      seq,
      iso(a.occurredAt),
      a.actorType,
      a.actorId,
      a.action,
      a.targets,
      a.changes,
      a.requestId,
      a.clientIp,
      a.userAgent,
    ]);
  }
  const r = entry as RequestContent;
  return stableJson([
    "request",
    r.chain,
    seq,
    r.requestId,
    iso(r.occurredAt),
    r.keyId,
    r.method,
    r.route,
    r.status,
    r.clientIp,
    r.userAgent,
  ]);
}

const hex = (bytes: ArrayBuffer) =>
  [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");

/** The hash of an entry that follows `prevHash`. */
export async function entryHash(
  log: AuditLog,
  seq: number,
  prevHash: string,
  entry: ActionContent | RequestContent,
): Promise<string> {
  const text = `${prevHash}\n${canonical(log, seq, entry)}`;
  return hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
}

/** An exported entry: its content, seq and the two hashes. */
export type ChainedEntry = (ActionContent | RequestContent) & { seq: number; prevHash: string; hash: string };

export type VerifyResult =
  | { ok: true; entries: number; firstSeq: number | null; lastSeq: number | null; head: string | null }
  | { ok: false; entries: number; brokenAt: { chain: string; seq: number }; reason: string };

/**
 * Checks runs of entries (any number of chains, each in seq order): every hash recomputes, every
 * `prevHash` is the previous entry's hash, seqs have no gap. The first entry of each chain in the
 * range is taken as the anchor (its `prevHash` is trusted) unless `anchors` names the hash it must
 * link to (GENESIS for a chain's start, or the prune anchor).
 */
export async function verifyEntries(
  log: AuditLog,
  entries: readonly ChainedEntry[],
  anchors: Record<string, string> = {},
): Promise<VerifyResult> {
  const last = new Map<string, { seq: number; hash: string }>();
  let first: number | null = null;
  let lastSeq: number | null = null;
  let head: string | null = null;
  for (const e of entries) {
    const prev = last.get(e.chain);
    const broken = (reason: string): VerifyResult => ({
      ok: false,
      entries: entries.length,
      brokenAt: { chain: e.chain, seq: e.seq },
      reason,
    });
    if (prev) {
      if (e.seq !== prev.seq + 1) return broken(`seq ${e.seq} follows ${prev.seq}: entries are missing`);
      if (e.prevHash !== prev.hash) return broken("prev_hash is not the previous entry's hash");
    } else {
      const anchor = anchors[e.chain];
      if (anchor !== undefined && e.prevHash !== anchor)
        return broken("the first entry does not link to the chain's anchor");
    }
    if ((await entryHash(log, e.seq, e.prevHash, e)) !== e.hash)
      return broken("the entry's content does not match its hash");
    last.set(e.chain, { seq: e.seq, hash: e.hash });
    first ??= e.seq;
    lastSeq = e.seq;
    head = e.hash;
  }
  return { ok: true, entries: entries.length, firstSeq: first, lastSeq, head };
}

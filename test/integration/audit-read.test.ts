/**
 * Reading the audit trail: the admin list (filters, pages), a tenant's own list and export (and
 * never another tenant's), the streamed export (ordered, complete, verifiable) and the admin
 * verification, which catches an edited row, a deleted one and reordered hashes. Entries are made
 * with `appendToChains`, as the recorders make them.
 */
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { appendToChains } from "../../workers/audit/append";
import {
  type ActionContent,
  type ChainedEntry,
  GENESIS,
  type RequestContent,
  verifyEntries,
} from "../../workers/audit/chain";
import { withDb } from "../support/db";
import { admin, bearer, expectJson, gateway, seedTenant, uniq } from "../support/gateway";

const MINUTE = 60_000;
/** A fixed past hour, so the time filters never race the clock. */
const T0 = Date.parse("2026-06-01T10:00:00.000Z");
const at = (minutes: number) => new Date(T0 + minutes * MINUTE).toISOString();

interface Entry {
  log: string;
  chain: string;
  seq: number;
  occurredAt: string;
  actorId?: string;
  action?: string;
  keyId?: string;
  prevHash: string;
  hash: string;
  [field: string]: unknown;
}
interface Page {
  data: Entry[];
  next_cursor: string | null;
}
interface Verification {
  ok: boolean;
  entries: number;
  chains: number;
  brokenAt?: { chain: string; seq: number };
  reason?: string;
}

/** An action of `chain` at minute `minute`, by `actor`. */
function action(chain: string, minute: number, actor: string, verb = "key.create"): ActionContent {
  return {
    chain,
    occurredAt: at(minute),
    actorType: "key",
    actorId: actor,
    action: verb,
    targets: [{ type: "key", id: `key_${minute}` }],
    changes: { name: { before: null, after: `n${minute}` } },
    requestId: `req_${uniq()}`,
    clientIp: "203.0.113.7",
    userAgent: "=cmd|' /C calc'!A0",
  };
}

function request(chain: string, minute: number, keyId: string): RequestContent {
  return {
    chain,
    requestId: `req_${uniq()}${uniq()}`,
    occurredAt: at(minute),
    keyId,
    method: "GET",
    route: "/v1/",
    status: 200,
    clientIp: "198.51.100.1",
    userAgent: "curl/8",
  };
}

/**
 * A tenant whose chains start empty: creating it through the admin API is itself an audited action
 * (workers/audit/record.ts), which these tests clear so each builds its chains from seq 1.
 */
async function seedBareTenant() {
  const tenant = await seedTenant();
  await withDb(async (db) => {
    await db.execute(sql`DELETE FROM audit.actions WHERE chain = ${tenant.tenantId}`);
    await db.execute(sql`DELETE FROM audit.requests WHERE chain = ${tenant.tenantId}`);
    await db.execute(sql`DELETE FROM audit.chains WHERE chain = ${tenant.tenantId}`);
  });
  return tenant;
}

const appendActions = (entries: ActionContent[]) => withDb((db) => appendToChains(db, "action", entries));

const list = async (query: string) => expectJson<Page>(await admin("GET", `/admin/v1/audit?${query}`), 200);
const verify = async (query: string) =>
  expectJson<Verification>(await admin("GET", `/admin/v1/audit/verify?${query}`), 200);

/** Every entry of a list, page by page. */
async function listAll(
  query: string,
  limit: number,
  from: string | null = null,
): Promise<{ entries: Entry[]; pages: number }> {
  const entries: Entry[] = [];
  let cursor = from;
  let pages = 0;
  do {
    const page = await list(`${query}&limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    entries.push(...page.data);
    cursor = page.next_cursor;
    pages++;
  } while (cursor);
  return { entries, pages };
}

const ndjson = (text: string) =>
  text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Entry);

describe("admin audit list", () => {
  // The file's first request loads the Worker's bundle: give it room on a busy machine.
  it("answers every field of each entry, newest first, filtered by tenant, actor, action and time", {
    timeout: 30_000,
  }, async () => {
    const a = await seedBareTenant();
    const b = await seedBareTenant();
    await appendActions([
      action(a.tenantId, 0, "key_alice"),
      action(a.tenantId, 1, "key_bob", "key.revoke"),
      action(a.tenantId, 2, "key_alice", "key.revoke"),
      action(b.tenantId, 3, "key_alice"),
    ]);
    const all = await list(`tenant=${a.tenantId}`);
    expect(all.data.map((e) => e.seq)).toEqual([3, 2, 1]);
    expect(all.next_cursor).toBeNull();
    const newest = all.data[0] as Entry;
    expect(newest).toEqual({
      log: "action",
      chain: a.tenantId,
      seq: 3,
      occurredAt: at(2),
      actorType: "key",
      actorId: "key_alice",
      action: "key.revoke",
      targets: [{ type: "key", id: "key_2" }],
      changes: { name: { before: null, after: "n2" } },
      requestId: expect.stringMatching(/^req_/),
      clientIp: "203.0.113.7",
      userAgent: "=cmd|' /C calc'!A0",
      prevHash: all.data[1]?.hash,
      hash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });

    const byActor = await list(`tenant=${a.tenantId}&actor=key_alice`);
    expect(byActor.data.map((e) => e.seq)).toEqual([3, 1]);
    const byAction = await list(`tenant=${a.tenantId}&action=key.revoke`);
    expect(byAction.data.map((e) => e.seq)).toEqual([3, 2]);
    const byTime = await list(`tenant=${a.tenantId}&from=${at(1)}&to=${at(2)}`);
    expect(byTime.data.map((e) => e.seq)).toEqual([2]);
    // Across tenants: the actor's entries in both chains, and nothing of anyone else's.
    const acrossTenants = await list(`actor=key_alice&from=${at(0)}&to=${at(4)}`);
    const ours = acrossTenants.data.filter((e) => e.chain === a.tenantId || e.chain === b.tenantId);
    expect(ours.map((e) => [e.chain, e.seq])).toEqual([
      [b.tenantId, 1],
      [a.tenantId, 3],
      [a.tenantId, 1],
    ]);
    expect(acrossTenants.data.every((e) => e.actorId === "key_alice")).toBe(true);
  });

  it("lists the request log by key, and refuses an action filter on it", async () => {
    const t = await seedBareTenant();
    await withDb((db) =>
      appendToChains(db, "request", [request(t.tenantId, 0, t.keyId), request(t.tenantId, 1, "key_other")]),
    );
    const page = await list(`log=request&tenant=${t.tenantId}&actor=${t.keyId}`);
    expect(page.data).toHaveLength(1);
    expect(page.data[0]).toMatchObject({
      log: "request",
      seq: 1,
      keyId: t.keyId,
      route: "/v1/",
      status: 200,
    });

    const refused = await admin("GET", `/admin/v1/audit?log=request&action=key.create`);
    expect(refused.status).toBe(400);
    expect(await refused.json()).toMatchObject({
      code: "validation_failed",
      errors: [{ path: "action", message: "only with log=action" }],
    });
  });

  it("pages with a cursor: each entry exactly once, entries appended meanwhile do not shift the pages", async () => {
    const t = await seedBareTenant();
    // Five entries in one millisecond: the cursor orders by chain and seq after the time.
    await appendActions([
      ...Array.from({ length: 5 }, () => action(t.tenantId, 10, "key_p")),
      ...Array.from({ length: 7 }, (_, i) => action(t.tenantId, 11 + i, "key_p")),
    ]);
    const first = await list(`tenant=${t.tenantId}&limit=5`);
    await appendActions([action(t.tenantId, 30, "key_p")]); // newer: lands before the pages already read
    const rest = await listAll(`tenant=${t.tenantId}`, 5, first.next_cursor);
    const seqs = [...first.data, ...rest.entries].map((e) => e.seq);
    expect(seqs).toEqual([12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    expect(rest.pages).toBe(2);

    // A cursor of the action log is refused by the request log, and garbage is refused.
    const other = await admin("GET", `/admin/v1/audit?log=request&cursor=${first.next_cursor}`);
    expect(other.status).toBe(400);
    expect((await admin("GET", "/admin/v1/audit?cursor=not-a-cursor")).status).toBe(400);
    const backwards = await admin("GET", `/admin/v1/audit?from=${at(5)}&to=${at(1)}`);
    expect(backwards.status).toBe(400);
    expect(await backwards.json()).toMatchObject({
      code: "validation_failed",
      detail: "`to` must be after `from`.",
    });
  });
});

describe("a tenant's own audit trail", () => {
  it("lists and exports only the caller's chain, whatever the query asks for", async () => {
    const a = await seedBareTenant();
    const b = await seedBareTenant();
    await appendActions([action(a.tenantId, 0, "key_a"), action(b.tenantId, 0, "key_b")]);
    await withDb((db) =>
      appendToChains(db, "request", [request(a.tenantId, 0, a.keyId), request(b.tenantId, 0, b.keyId)]),
    );
    const mine = await expectJson<Page>(
      await gateway(`/gateway/v1/audit?tenant=${b.tenantId}&actor=key_b`, { headers: bearer(a.key) }),
      200,
    );
    expect(mine.data).toEqual([]);
    const actions = await expectJson<Page>(
      await gateway("/gateway/v1/audit", { headers: bearer(a.key) }),
      200,
    );
    expect(actions.data.map((e) => [e.chain, e.actorId])).toEqual([[a.tenantId, "key_a"]]);
    const requests = await expectJson<Page>(
      await gateway("/gateway/v1/audit?log=request", { headers: bearer(a.key) }),
      200,
    );
    expect(requests.data.map((e) => [e.chain, e.keyId])).toEqual([[a.tenantId, a.keyId]]);

    for (const log of ["action", "request"]) {
      const res = await gateway(`/gateway/v1/audit/export?log=${log}&format=ndjson&tenant=${b.tenantId}`, {
        headers: bearer(a.key),
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("application/x-ndjson");
      expect(res.headers.get("content-disposition")).toBe(
        `attachment; filename="audit-${log}-${a.slug}.ndjson"`,
      );
      const lines = ndjson(await res.text());
      expect(lines.map((e) => e.chain)).toEqual([a.tenantId]);
    }
    // Unauthenticated: nothing.
    expect((await gateway("/gateway/v1/audit")).status).toBe(401);
  });

  it("charges the export 30 of the management bucket, as the usage export", async () => {
    const t = await seedBareTenant();
    const listed = await gateway("/gateway/v1/audit", { headers: bearer(t.key) });
    await listed.text();
    expect(listed.headers.get("ratelimit")).toMatch(/^"manage";r=299;/);
    const exported = await gateway("/gateway/v1/audit/export", { headers: bearer(t.key) });
    await exported.text();
    expect(exported.headers.get("ratelimit")).toMatch(/^"manage";r=2(69|7\d);/);
  });
});

describe("audit export", () => {
  it("streams every entry chain by chain in seq order, across pages, and the NDJSON verifies", async () => {
    const a = await seedBareTenant();
    const b = await seedBareTenant();
    // 1,203 entries in A (more than one export page), 3 in B, interleaved in time.
    const many = Array.from({ length: 1203 }, (_, i) => action(a.tenantId, i % 50, "key_x"));
    await appendActions([...many, ...[0, 1, 2].map((m) => action(b.tenantId, m, "key_x"))]);
    const res = await admin("GET", `/admin/v1/audit/export?format=ndjson&actor=ignored`);
    expect(res.status).toBe(200);
    const lines = ndjson(await res.text()).filter((e) => e.chain === a.tenantId || e.chain === b.tenantId);
    const [first, second] = [a.tenantId, b.tenantId].sort();
    expect(lines.map((e) => [e.chain, e.seq])).toEqual([
      ...Array.from({ length: first === a.tenantId ? 1203 : 3 }, (_, i) => [first, i + 1]),
      ...Array.from({ length: second === a.tenantId ? 1203 : 3 }, (_, i) => [second, i + 1]),
    ]);
    const result = await verifyEntries("action", lines as unknown as ChainedEntry[], {
      [a.tenantId]: GENESIS,
      [b.tenantId]: GENESIS,
    });
    expect(result).toMatchObject({ ok: true, entries: 1206 });

    // One tenant, a time range: the run of seqs from the first entry in it to the last.
    const ranged = await admin(
      "GET",
      `/admin/v1/audit/export?format=ndjson&tenant=${b.tenantId}&from=${at(1)}&to=${at(2)}`,
    );
    expect(ndjson(await ranged.text()).map((e) => e.seq)).toEqual([2]);
  });

  it("writes CSV with a header, JSON cells and spreadsheet formulas defused", async () => {
    const t = await seedBareTenant();
    await appendActions([action(t.tenantId, 0, "key_c"), action(t.tenantId, 1, "key_c")]);
    const res = await admin("GET", `/admin/v1/audit/export?format=csv&tenant=${t.tenantId}`);
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    const [header, row1, row2, end] = (await res.text()).split("\n");
    // JSON cells as the database keeps them (jsonb orders keys; the hash does not depend on it).
    expect(header).toBe(
      "log,chain,seq,occurred_at,actor_type,actor_id,action,targets,changes,request_id,client_ip,user_agent,prev_hash,hash",
    );
    expect(row1).toMatch(
      new RegExp(
        `^action,${t.tenantId},1,${at(0)},key,key_c,key.create,"\\[{""id"":""key_0"",""type"":""key""}\\]","{""name"":{""after"":""n0"",""before"":null}}",req_\\w+,203.0.113.7,'=cmd\\|' /C calc'!A0,${GENESIS},[0-9a-f]{64}$`,
      ),
    );
    expect(row2).toMatch(new RegExp(`^action,${t.tenantId},2,`));
    expect(end).toBe("");
  });
});

describe("audit OpenAPI", () => {
  it("documents the five audit operations", async () => {
    const doc = await expectJson<{ paths: Record<string, Record<string, unknown>> }>(
      await gateway("/gateway/openapi.json"),
      200,
    );
    for (const path of [
      "/admin/v1/audit",
      "/admin/v1/audit/export",
      "/admin/v1/audit/verify",
      "/gateway/v1/audit",
      "/gateway/v1/audit/export",
    ])
      expect(Object.keys(doc.paths[path] ?? {}), path).toEqual(["get"]);
  });
});

describe("audit verify", () => {
  /** A tenant with `n` actions, one a minute. */
  async function chainOf(n: number): Promise<string> {
    const t = await seedBareTenant();
    await appendActions(Array.from({ length: n }, (_, i) => action(t.tenantId, i, "key_v")));
    return t.tenantId;
  }
  const tamper = (statement: ReturnType<typeof sql>) => withDb((db) => db.execute(statement));

  it("holds on an untouched chain, whole or over a time range", async () => {
    const chain = await chainOf(5);
    expect(await verify(`tenant=${chain}`)).toEqual({ ok: true, log: "action", entries: 5, chains: 1 });
    expect(await verify(`tenant=${chain}&from=${at(2)}&to=${at(4)}`)).toEqual({
      ok: true,
      log: "action",
      entries: 2,
      chains: 1,
    });
  });

  it("names the edited row", async () => {
    const chain = await chainOf(5);
    await tamper(sql`UPDATE audit.actions SET action = 'x' WHERE chain = ${chain} AND seq = 3`);
    expect(await verify(`tenant=${chain}`)).toEqual({
      ok: false,
      log: "action",
      entries: 2,
      chains: 1,
      brokenAt: { chain, seq: 3 },
      reason: "the entry's content does not match its hash",
    });
    // A range that starts after the edit does not see it; one that holds it does.
    expect((await verify(`tenant=${chain}&from=${at(3)}`)).ok).toBe(true);
    expect(await verify(`tenant=${chain}&from=${at(1)}&to=${at(3)}`)).toMatchObject({
      ok: false,
      brokenAt: { chain, seq: 3 },
    });
  });

  it("reports a deleted row as a gap, and deleted first or newest entries too", async () => {
    const middle = await chainOf(5);
    await tamper(sql`DELETE FROM audit.actions WHERE chain = ${middle} AND seq = 3`);
    expect(await verify(`tenant=${middle}`)).toMatchObject({
      ok: false,
      brokenAt: { chain: middle, seq: 4 },
      reason: "seq 4 follows 2: entries are missing",
    });

    const first = await chainOf(3);
    await tamper(sql`DELETE FROM audit.actions WHERE chain = ${first} AND seq = 1`);
    expect(await verify(`tenant=${first}`)).toMatchObject({
      ok: false,
      brokenAt: { chain: first, seq: 2 },
      reason: "seq 2 follows 0: entries are missing",
    });

    const newest = await chainOf(3);
    await tamper(sql`DELETE FROM audit.actions WHERE chain = ${newest} AND seq = 3`);
    expect(await verify(`tenant=${newest}`)).toMatchObject({
      ok: false,
      brokenAt: { chain: newest, seq: 3 },
      reason: "entries 3-3 are missing (the chain head ends at seq 3)",
    });
  });

  it("fails when hashes are reordered, or the first entry no longer links to the anchor", async () => {
    const swapped = await chainOf(4);
    await tamper(sql`
      UPDATE audit.actions AS a SET hash = b.hash, prev_hash = b.prev_hash
      FROM audit.actions AS b
      WHERE a.chain = ${swapped} AND b.chain = ${swapped}
        AND ((a.seq = 2 AND b.seq = 3) OR (a.seq = 3 AND b.seq = 2))`);
    expect(await verify(`tenant=${swapped}`)).toMatchObject({
      ok: false,
      brokenAt: { chain: swapped, seq: 2 },
    });

    // Rewriting the first entry's link (to hide earlier entries) breaks the anchor.
    const relinked = await chainOf(2);
    await tamper(
      sql`UPDATE audit.actions SET prev_hash = ${"f".repeat(64)} WHERE chain = ${relinked} AND seq = 1`,
    );
    expect(await verify(`tenant=${relinked}`)).toMatchObject({
      ok: false,
      brokenAt: { chain: relinked, seq: 1 },
      reason: "the first entry does not link to the chain's anchor",
    });
  });

  it("starts a pruned chain at the anchor retention left, and fails when the anchor is not the last pruned hash", async () => {
    const chain = await chainOf(5);
    // What retention does: the oldest entries go, their last hash stays as the anchor.
    const prune = (head: string) =>
      tamper(sql`
        WITH gone AS (DELETE FROM audit.actions WHERE chain = ${chain} AND seq <= 2 RETURNING seq, hash)
        UPDATE audit.chains SET pruned_seq = 2, pruned_head = ${head}
        WHERE chain = ${chain} AND log = 'action'`);
    const second = await withDb(async (db) => {
      const r = await db.execute<{ hash: string }>(
        sql`SELECT hash FROM audit.actions WHERE chain = ${chain} AND seq = 2`,
      );
      return r.rows[0]?.hash as string;
    });
    await prune(second);
    expect(await verify(`tenant=${chain}`)).toEqual({ ok: true, log: "action", entries: 3, chains: 1 });
    await tamper(
      sql`UPDATE audit.chains SET pruned_head = ${GENESIS} WHERE chain = ${chain} AND log = 'action'`,
    );
    expect(await verify(`tenant=${chain}`)).toMatchObject({
      ok: false,
      brokenAt: { chain, seq: 3 },
      reason: "the first entry does not link to the chain's anchor",
    });
  });

  it("refuses a range larger than one verification checks, before hashing", async () => {
    const chain = `ten_big${uniq()}`;
    await tamper(sql`INSERT INTO audit.chains (chain, log, seq, head, pruned_seq, pruned_head)
      VALUES (${chain}, 'action', 100001, ${GENESIS}, 0, ${GENESIS})`);
    const res = await admin("GET", `/admin/v1/audit/verify?tenant=${chain}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: "validation_failed",
      detail:
        "The range holds 100001 entries; one verification checks at most 100000. Narrow it with tenant, from and to.",
    });
  });
});

/**
 * The request audit log (audit.requests), written by the usage pipeline: every authenticated
 * request — proxied and metered, refused after authentication, or a tenant API call — is one entry
 * of its tenant's hash chain, once, however often its queue message is delivered; and only admitted
 * requests become usage rows.
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it, vi } from "vitest";
import { GENESIS, type RequestContent, verifyEntries } from "../../workers/audit/chain";
import type { UsageEnvelope } from "../../workers/metering/usage-event";
import { withDb } from "../support/db";
import { bearer, gateway, seedTenant, uniq } from "../support/gateway";
import { deliver, reconciliation } from "../support/metering";

/**
 * Runs `fn` with the usage queue's sends captured (not delivered) until every id in `ids()` has
 * been sent, as a usage event or an audit record; returns the captured message bodies.
 */
async function captureMessages(fn: () => Promise<string[]>): Promise<UsageEnvelope[]> {
  const bodies: UsageEnvelope[] = [];
  const send = vi.spyOn(env.USAGE_QUEUE, "send").mockImplementation(async (body) => {
    bodies.push(body as UsageEnvelope);
    return {} as QueueSendResponse;
  });
  try {
    const ids = await fn();
    await vi.waitFor(
      () => {
        const sent = new Set(bodies.flatMap((b) => [...b.events, ...(b.audit ?? [])].map((e) => e.id)));
        const missing = ids.filter((id) => !sent.has(id));
        if (missing.length > 0) throw new Error(`not sent yet: ${missing.join(", ")}`);
      },
      { timeout: 5_000 },
    );
  } finally {
    send.mockRestore();
  }
  return bodies;
}

/** Calls the gateway, drains the body, returns the response's request id and status. */
async function call(path: string, init: RequestInit): Promise<{ id: string; status: number }> {
  const res = await gateway(path, init);
  await res.arrayBuffer();
  return { id: res.headers.get("x-request-id") as string, status: res.status };
}

/** A request log entry as an export carries it. */
type LoggedEntry = RequestContent & { seq: number; prevHash: string; hash: string };

/** A tenant's request log in seq order, as an export carries it. */
async function requestLog(tenantId: string): Promise<LoggedEntry[]> {
  return withDb(async (db) => {
    const rows = await db.execute<{
      chain: string;
      seq: string | number;
      request_id: string;
      occurred_at: string | Date;
      key_id: string;
      method: string;
      route: string;
      status: number;
      client_ip: string | null;
      user_agent: string | null;
      prev_hash: string;
      hash: string;
    }>(sql`SELECT * FROM audit.requests WHERE chain = ${tenantId} ORDER BY seq`);
    return rows.rows.map((r) => ({
      chain: r.chain,
      seq: Number(r.seq),
      requestId: r.request_id,
      occurredAt: new Date(r.occurred_at).toISOString(),
      keyId: r.key_id,
      method: r.method,
      route: r.route,
      status: Number(r.status),
      clientIp: r.client_ip,
      userAgent: r.user_agent,
      prevHash: r.prev_hash,
      hash: r.hash,
    }));
  });
}

async function usageRows(tenantId: string): Promise<string[]> {
  return withDb(async (db) => {
    const rows = await db.execute<{ id: string }>(
      sql`SELECT id FROM usage_events WHERE tenant_id = ${tenantId} ORDER BY ts, id`,
    );
    return rows.rows.map((r) => r.id);
  });
}

/** Checks a whole chain from its genesis: unbroken, seqs 1..n, in arrival order (time, then id). */
async function expectChained(tenantId: string, entries: LoggedEntry[]) {
  expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
  const arrival = entries.map((e) => `${e.occurredAt} ${e.requestId}`);
  expect(arrival).toEqual([...arrival].sort());
  expect(await verifyEntries("request", entries, { [tenantId]: GENESIS })).toMatchObject({
    ok: true,
    entries: entries.length,
  });
}

describe("request audit log", () => {
  it("logs each proxied request once, with its id, key, route, method, status, client IP, user agent and time", {
    timeout: 30_000,
  }, async () => {
    const t = await seedTenant();
    const before = Date.now();
    const longAgent = `agent-${"x".repeat(300)}`;
    const sent: Array<{ id: string; status: number }> = [];
    const bodies = await captureMessages(async () => {
      sent.push(
        await call(`/v1/audit/${uniq()}`, {
          headers: { ...bearer(t.key), "cf-connecting-ip": "203.0.113.7", "user-agent": "curl/8.5.0" },
        }),
        await call(`/v1/audit/${uniq()}?status=404`, {
          method: "POST",
          body: "{}",
          headers: { ...bearer(t.key), "cf-connecting-ip": "2001:db8::1", "user-agent": longAgent },
        }),
        await call(`/v1/audit/${uniq()}`, { headers: bearer(t.key) }),
      );
      return sent.map((s) => s.id);
    });
    expect(sent.map((s) => s.status)).toEqual([200, 404, 200]);

    const result = await deliver(bodies);
    expect(result.retryMessages).toEqual([]);
    const log = await requestLog(t.tenantId);
    expect(log.map(({ prevHash: _p, hash: _h, occurredAt: _o, ...rest }) => rest)).toEqual([
      {
        chain: t.tenantId,
        seq: 1,
        requestId: sent[0]?.id,
        keyId: t.keyId,
        method: "GET",
        route: "/v1/",
        status: 200,
        clientIp: "203.0.113.7",
        userAgent: "curl/8.5.0",
      },
      {
        chain: t.tenantId,
        seq: 2,
        requestId: sent[1]?.id,
        keyId: t.keyId,
        method: "POST",
        route: "/v1/",
        status: 404,
        clientIp: "2001:db8::1",
        userAgent: longAgent.slice(0, 256),
      },
      {
        chain: t.tenantId,
        seq: 3,
        requestId: sent[2]?.id,
        keyId: t.keyId,
        method: "GET",
        route: "/v1/",
        status: 200,
        clientIp: null,
        userAgent: null,
      },
    ]);
    for (const entry of log) {
      expect(Date.parse(entry.occurredAt)).toBeGreaterThanOrEqual(before - 1_000);
      expect(Date.parse(entry.occurredAt)).toBeLessThanOrEqual(Date.now());
    }
    await expectChained(t.tenantId, log);
    expect(await usageRows(t.tenantId)).toHaveLength(3);
  });

  it("adds nothing when the same batch is delivered again", { timeout: 30_000 }, async () => {
    const t = await seedTenant();
    const bodies = await captureMessages(async () => {
      const ids: string[] = [];
      for (let i = 0; i < 4; i++)
        ids.push((await call(`/v1/audit/${uniq()}`, { headers: bearer(t.key) })).id);
      // An audit record too: it has no usage row whose insert would tell a redelivery apart.
      ids.push((await call("/gateway/v1/keys", { headers: bearer(t.key) })).id);
      return ids;
    });
    await deliver(bodies);
    const first = await requestLog(t.tenantId);
    expect(first).toHaveLength(5);

    const again = await deliver(bodies);
    expect(again.explicitAcks).toHaveLength(bodies.length);
    expect(again.retryMessages).toEqual([]);
    expect(await requestLog(t.tenantId)).toEqual(first);
    const head = await withDb(async (db) =>
      db.execute<{ seq: string | number; head: string }>(
        sql`SELECT seq, head FROM audit.chains WHERE chain = ${t.tenantId} AND log = 'request'`,
      ),
    );
    expect(head.rows.map((r) => ({ seq: Number(r.seq), head: r.head }))).toEqual([
      { seq: 5, head: first[4]?.hash },
    ]);
  });

  it("keeps one chain per tenant when a batch mixes tenants, each in arrival order", {
    timeout: 30_000,
  }, async () => {
    const a = await seedTenant();
    const b = await seedTenant();
    const sent: Record<string, string[]> = { [a.tenantId]: [], [b.tenantId]: [] };
    const bodies = await captureMessages(async () => {
      for (let i = 0; i < 3; i++)
        for (const t of [a, b])
          sent[t.tenantId]?.push((await call(`/v1/audit/${uniq()}`, { headers: bearer(t.key) })).id);
      return Object.values(sent).flat();
    });
    // Everything in one queue message, the two tenants' requests interleaved and shuffled.
    const events = bodies.flatMap((body) => body.events).reverse();
    await deliver([{ v: 2, events }]);
    for (const t of [a, b]) {
      const log = await requestLog(t.tenantId);
      expect(log.map((e) => e.requestId)).toEqual(sent[t.tenantId]);
      expect(new Set(log.map((e) => e.keyId))).toEqual(new Set([t.keyId]));
      await expectChained(t.tenantId, log);
    }
  });

  it("logs a request refused with 429 and a tenant API call, without a usage row for either", {
    timeout: 30_000,
  }, async () => {
    const t = await seedTenant({ plan: { burstCapacity: 1, refillTokens: 1, refillPeriodSeconds: 86_400 } });
    const headers = { ...bearer(t.key), "cf-connecting-ip": "198.51.100.4" };
    const sent: Array<{ id: string; status: number }> = [];
    const bodies = await captureMessages(async () => {
      sent.push(
        await call(`/v1/audit/${uniq()}`, { headers }),
        await call(`/v1/audit/${uniq()}`, { headers }),
        await call("/gateway/v1/keys", { headers }),
      );
      return sent.map((s) => s.id);
    });
    expect(sent.map((s) => s.status)).toEqual([200, 429, 200]);
    // The refusal and the tenant API call travel as audit records, not usage events.
    expect(bodies.flatMap((b) => b.events.map((e) => e.id))).toEqual([sent[0]?.id]);
    expect(bodies.flatMap((b) => (b.audit ?? []).map((r) => r.id))).toEqual([sent[1]?.id, sent[2]?.id]);

    await deliver(bodies);
    await deliver(bodies);
    const log = await requestLog(t.tenantId);
    expect(log.map((e) => [e.requestId, e.route, e.status, e.clientIp])).toEqual([
      [sent[0]?.id, "/v1/", 200, "198.51.100.4"],
      [sent[1]?.id, "/v1/", 429, "198.51.100.4"],
      [sent[2]?.id, "/gateway/v1/keys", 200, "198.51.100.4"],
    ]);
    await expectChained(t.tenantId, log);
    // Reconciliation is unchanged: one admitted request, one usage row.
    expect(await usageRows(t.tenantId)).toEqual([sent[0]?.id]);
    const table = await reconciliation(t.tenantId);
    const sum = (k: "admittedRequests" | "usageRows") => table.rows.reduce((n, r) => n + r[k], 0);
    expect({ admitted: sum("admittedRequests"), rows: sum("usageRows") }).toEqual({ admitted: 1, rows: 1 });
  });
});

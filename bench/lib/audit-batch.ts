/**
 * What the request audit log costs the usage consumer: one `writeUsageBatch` of N events (usage rows,
 * rollups, outbox and one chained audit entry per event, SHA-256 each) for one tenant and for 25,
 * median of a few runs, and the hashing alone. Run from Node through the Worker's own Postgres client
 * (`openDb`: the neon driver over the WebSocket bridge, as in workerd), against the bench's database.
 * Moved here from the test suite (a measurement, not a test); it still checks that every event is
 * stored and logged once, chained per tenant (`pass`) — test/integration/audit-requests.test.ts
 * proves the same on small batches.
 */
import { neonConfig } from "@neondatabase/serverless";
import { sql } from "drizzle-orm";
import ws from "ws";
import { startBridge } from "../../dev/pg-bridge";
import { entryHash, GENESIS } from "../../workers/audit/chain";
import { requestEntry } from "../../workers/audit/request-log";
import { writeUsageBatch } from "../../workers/metering/postgres-sink";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { openDb } from "../../workers/shared/db";
import { newId } from "../../workers/shared/ids";
import { median } from "./stats";

export interface AuditBatchResult {
  events: number;
  runs: number;
  /** Median ms per batch, by number of tenants the batch is spread over. */
  batchMs: Array<{ tenants: number; ms: number }>;
  /** The SHA-256 chain of `events` entries alone, ms. */
  hashMs: number;
  /** Every batch stored and logged every event, and each tenant's chain grew by exactly its events. */
  pass: boolean;
  failures: string[];
}

interface Owner {
  tenantId: string;
  keyId: string;
}

/** `events` events spread over `owners` round-robin, within the last five minutes. */
function batch(owners: Owner[], events: number): UsageEvent[] {
  const start = Date.now() - 300_000;
  return Array.from({ length: events }, (_, i) => {
    const owner = owners[i % owners.length] as Owner;
    const at = start + Math.floor((i * 300_000) / events);
    return {
      id: newId("req", at),
      ...owner,
      env: "live",
      method: "GET",
      route: "/v1/",
      status: 200,
      billable: true,
      units: 1,
      bytesIn: 10,
      bytesOut: 100,
      latencyMs: 7,
      ts: new Date(at).toISOString(),
      clientIp: "203.0.113.9",
      userAgent: "bench/1.0",
    };
  });
}

export async function auditBatchTimes(o: {
  databaseUrl: string;
  /** Makes a tenant (through the admin API) and returns its ids. */
  tenant: (slug: string) => Promise<Owner>;
  events: number;
  runs?: number;
}): Promise<AuditBatchResult> {
  const runs = o.runs ?? 3;
  const failures: string[] = [];
  const result: AuditBatchResult = { events: o.events, runs, batchMs: [], hashMs: 0, pass: true, failures };
  // The neon driver in Node needs a WebSocket implementation (workerd has its own).
  neonConfig.webSocketConstructor = ws;
  const bridge = await startBridge({ target: o.databaseUrl });
  try {
    const env = { DATABASE_URL: o.databaseUrl, PG_WS_PROXY: bridge.wsProxy };
    for (const n of [1, 25]) {
      const owners: Owner[] = [];
      for (let i = 0; i < n; i++) owners.push(await o.tenant(`bench-audit-${n}-${i}`));
      const times: number[] = [];
      for (let run = 0; run < runs; run++) {
        const events = batch(owners, o.events);
        const { db, close } = openDb(env);
        try {
          const t0 = performance.now();
          const written = await writeUsageBatch(db, events);
          times.push(performance.now() - t0);
          if (written.inserted.length !== o.events || written.logged !== o.events)
            failures.push(
              `${n} tenant(s), run ${run + 1}: ${written.inserted.length} inserted, ${written.logged} logged of ${o.events}`,
            );
        } finally {
          await close();
        }
      }
      result.batchMs.push({ tenants: n, ms: median(times) });
      const { db, close } = openDb(env);
      try {
        const heads = await db.execute<{ seq: string | number }>(
          sql`SELECT seq FROM audit.chains WHERE log = 'request'
            AND chain = ANY (${sql.param(owners.map((w) => w.tenantId))}::text[])`,
        );
        const logged = heads.rows.reduce((sum, r) => sum + Number(r.seq), 0);
        if (logged !== o.events * runs)
          failures.push(`${n} tenant(s): chains hold ${logged} entries, expected ${o.events * runs}`);
      } finally {
        await close();
      }
    }
  } finally {
    await bridge.stop();
  }

  const entries = batch([{ tenantId: "ten_hash", keyId: "key_hash" }], o.events).map(requestEntry);
  const t0 = performance.now();
  let head = GENESIS;
  for (const [i, entry] of entries.entries()) head = await entryHash("request", i + 1, head, entry);
  result.hashMs = performance.now() - t0;
  result.pass = failures.length === 0;
  return result;
}

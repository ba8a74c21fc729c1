/**
 * What the request audit log costs the usage consumer: a 5,000-event batch written by
 * `writeUsageBatch` (usage rows, rollups, outbox and now one chained audit entry per event, SHA-256
 * each) must still log every event once, chained per tenant. Prints the batch times (median of 3)
 * for one tenant and for 25 tenants, and the hashing alone, so a change that makes batches slower
 * shows in the output: run with `DATABASE_URL=postgres://…` for real PostgreSQL.
 */
import { env } from "cloudflare:workers";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { entryHash, GENESIS } from "../../workers/audit/chain";
import { requestEntry } from "../../workers/audit/request-log";
import { writeUsageBatch } from "../../workers/metering/postgres-sink";
import type { UsageEvent } from "../../workers/metering/usage-event";
import { openDb } from "../../workers/shared/db";
import { newId } from "../../workers/shared/ids";
import { withDb } from "../support/db";
import { admin, createPlan, expectJson, uniq } from "../support/gateway";
import { usageEvent } from "../support/usage-events";

const EVENTS = 5_000;
const RUNS = 3;

/** The clock in workerd moves only across I/O: a timer turn makes it read the time now. */
const now = async () => {
  await new Promise((resolve) => setTimeout(resolve, 0));
  return performance.now();
};

async function tenants(n: number): Promise<Array<{ tenantId: string; keyId: string }>> {
  const plan = await createPlan();
  const out: Array<{ tenantId: string; keyId: string }> = [];
  for (let i = 0; i < n; i++) {
    const slug = `t-${uniq()}`;
    const body = await expectJson<{ tenant: { id: string }; key: { id: string } }>(
      await admin("POST", "/admin/v1/tenants", { slug, name: `Tenant ${slug}`, planId: plan.id }),
      201,
    );
    out.push({ tenantId: body.tenant.id, keyId: body.key.id });
  }
  return out;
}

/** A batch of `EVENTS` events spread over `owners` round-robin, within the last few minutes. */
function batch(owners: Array<{ tenantId: string; keyId: string }>): UsageEvent[] {
  const start = Date.now() - 300_000;
  return Array.from({ length: EVENTS }, (_, i) => {
    const owner = owners[i % owners.length] as { tenantId: string; keyId: string };
    const at = start + Math.floor((i * 300_000) / EVENTS);
    return usageEvent({
      id: newId("req", at),
      ...owner,
      ts: new Date(at).toISOString(),
      clientIp: "203.0.113.9",
      userAgent: "bench/1.0",
    });
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

describe("request audit log: consumer batch time", () => {
  it("writes 5,000 events with their audit entries (1 and 25 tenants) and reports the times", {
    timeout: 600_000,
  }, async () => {
    const report: Record<string, number> = {};
    for (const n of [1, 25]) {
      const owners = await tenants(n);
      const times: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        const events = batch(owners);
        const { db, close } = openDb(env);
        try {
          const t0 = await now();
          const result = await writeUsageBatch(db, events);
          times.push((await now()) - t0);
          expect(result.inserted).toHaveLength(EVENTS);
          expect(result.logged).toBe(EVENTS);
        } finally {
          await close();
        }
      }
      report[`${n} tenant(s): ms per ${EVENTS}-event batch (median of ${RUNS})`] = Math.round(median(times));
      const heads = await withDb((db) =>
        db.execute<{ seq: string | number }>(
          sql`SELECT seq FROM audit.chains WHERE log = 'request'
            AND chain = ANY (${sql.param(owners.map((o) => o.tenantId))}::text[])`,
        ),
      );
      expect(heads.rows.reduce((sum, r) => sum + Number(r.seq), 0)).toBe(EVENTS * RUNS);
    }

    const entries = batch([{ tenantId: "ten_hash", keyId: "key_hash" }]).map(requestEntry);
    const t0 = await now();
    let head = GENESIS;
    for (const [i, entry] of entries.entries()) head = await entryHash("request", i + 1, head, entry);
    report[`SHA-256 chain of ${EVENTS} entries alone, ms`] = Math.round((await now()) - t0);
    console.warn("request audit batch times", JSON.stringify(report));
  });
});

/**
 * Group commit in the tenant object (durable-objects/group-commit.ts): concurrent admissions share
 * commits, each answers only once its charge is in SQLite, and a failed commit fails its admissions
 * without charging them.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { TenantConfig } from "../../durable-objects/limits";
import type { AdmitInput, TenantLimiter } from "../../durable-objects/tenant";
import { uniq } from "../support/gateway";

const config: TenantConfig = {
  version: 1,
  status: "active",
  limits: {
    burstCapacity: 1_000,
    refillTokens: 1,
    refillPeriodSeconds: 86_400,
    dailyQuota: 50,
    monthlyQuota: null,
  },
};

const input = (): AdmitInput => ({ keyId: "key_1", keyLimit: null, cost: 1, config, idempotency: null });

/** What SQLite holds (not the object's memory): the daily quota's use and the ledger's requests. */
function stored(stub: DurableObjectStub<TenantLimiter>) {
  return runInDurableObject(stub, (_o: TenantLimiter, state) => ({
    daily:
      state.storage.sql.exec<{ used: number }>("SELECT used FROM quotas WHERE name = 'daily'").toArray()[0]
        ?.used ?? 0,
    ledger: state.storage.sql.exec<{ n: number }>("SELECT coalesce(sum(requests), 0) AS n FROM ledger").one()
      .n,
    tokens: Math.floor(
      state.storage.sql.exec<{ t: number }>("SELECT tokens AS t FROM buckets WHERE name = 'tenant'").one().t,
    ),
  }));
}

describe("group commit", () => {
  it("admits exactly the quota out of 80 concurrent calls, every answer after its charge is in SQLite", async () => {
    const stub = env.TENANT.getByName(`group-${uniq()}`);
    const results = await Promise.all(Array.from({ length: 80 }, () => stub.admit(input())));
    expect(results.filter((r) => r.outcome === "admitted")).toHaveLength(50);
    expect(results.filter((r) => r.outcome === "quota_exceeded")).toHaveLength(30);
    expect(await stored(stub)).toEqual({ daily: 50, ledger: 50, tokens: 950 });
  });

  it("answers a single admission after its own commit", async () => {
    const stub = env.TENANT.getByName(`group-${uniq()}`);
    expect((await stub.admit(input())).outcome).toBe("admitted");
    expect(await stored(stub)).toEqual({ daily: 1, ledger: 1, tokens: 999 });
  });

  it("a failed commit fails every admission in it, charges none of them, and the next one starts from SQLite", async () => {
    const stub = env.TENANT.getByName(`group-${uniq()}`);
    expect((await stub.admit(input())).outcome).toBe("admitted");
    await runInDurableObject(stub, (_o: TenantLimiter, state) => {
      state.storage.sql.exec(
        "CREATE TRIGGER full BEFORE UPDATE ON quotas BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END",
      );
    });
    const failed = await Promise.allSettled(Array.from({ length: 5 }, () => stub.admit(input())));
    expect(failed.map((r) => r.status)).toEqual(Array(5).fill("rejected"));
    expect(String((failed[0] as PromiseRejectedResult).reason)).toContain("database or disk is full");
    expect(await stored(stub)).toEqual({ daily: 1, ledger: 1, tokens: 999 });

    await runInDurableObject(stub, (_o: TenantLimiter, state) => {
      state.storage.sql.exec("DROP TRIGGER full");
    });
    const next = await stub.admit(input());
    expect(next.outcome === "admitted" && next.limits.daily?.remaining).toBe(48);
    expect(await stored(stub)).toEqual({ daily: 2, ledger: 2, tokens: 998 });
  });

  it("the ledger read for reconciliation includes what is still waiting for its commit", async () => {
    const stub = env.TENANT.getByName(`group-${uniq()}`);
    const hours = await runInDurableObject(stub, async (o: TenantLimiter) => {
      const committed: Promise<void>[] = [];
      for (let i = 0; i < 3; i++) o.decide(input(), Date.now(), (c) => committed.push(c));
      const ledger = await o.ledger(0, Date.now() + 3_600_000);
      await Promise.all(committed);
      return ledger;
    });
    expect(hours.reduce((n, h) => n + h.requests, 0)).toBe(3);
  });
});

/** Group commit's bookkeeping (durable-objects/group-commit.ts): what one commit writes, and who hears how it went. */
import { describe, expect, it } from "vitest";
import { PendingWrites } from "../../durable-objects/group-commit";

const bucket = (tokens: number) => ({ tokens, updatedAt: 1_000 + tokens, capacity: 10 });
const HOUR = 3_600_000;

describe("PendingWrites", () => {
  it("keeps each window's latest state and adds up the ledger per hour", () => {
    const pending = new PendingWrites();
    pending.add(
      [{ name: "tenant", state: bucket(9) }],
      [{ name: "daily", usage: { period: "d1", used: 1 } }],
      {
        hour: HOUR,
        units: 2,
      },
    );
    pending.add(
      [{ name: "tenant", state: bucket(8) }],
      [{ name: "daily", usage: { period: "d1", used: 2 } }],
      {
        hour: HOUR,
        units: 3,
      },
    );
    pending.add([{ name: "key:k1", state: bucket(4) }], [], { hour: 2 * HOUR, units: 1 });
    pending.add([{ name: "manage", state: bucket(1) }], [], null);
    const writes = pending.take();
    expect(writes?.buckets).toEqual([
      { name: "tenant", state: bucket(8) },
      { name: "key:k1", state: bucket(4) },
      { name: "manage", state: bucket(1) },
    ]);
    expect(writes?.quotas).toEqual([{ name: "daily", usage: { period: "d1", used: 2 } }]);
    expect(writes?.ledger).toEqual([
      { hour: HOUR, requests: 2, units: 5 },
      { hour: 2 * HOUR, requests: 1, units: 1 },
    ]);
    expect(pending.empty).toBe(true);
    expect(pending.take()).toBeNull();
  });

  it("opens one group per commit, and every admission of it hears the commit", async () => {
    const pending = new PendingWrites();
    const a = pending.add([], [], { hour: HOUR, units: 1 });
    const b = pending.add([], [], { hour: HOUR, units: 1 });
    expect([a.opened, b.opened]).toEqual([true, false]);
    expect(a.committed).toBe(b.committed);
    const first = pending.take();
    const c = pending.add([], [], { hour: HOUR, units: 1 });
    expect(c.opened).toBe(true);
    expect(c.committed).not.toBe(a.committed);
    let heard = false;
    void c.committed.then(() => {
      heard = true;
    });
    first?.settle();
    await expect(a.committed).resolves.toBeUndefined();
    await Promise.resolve();
    expect(heard).toBe(false); // the next group waits for its own commit
  });

  it("fails every admission of a group whose commit failed, and only those", async () => {
    const pending = new PendingWrites();
    const a = pending.add([], [], { hour: HOUR, units: 1 });
    const failed = pending.take();
    const b = pending.add([], [], { hour: HOUR, units: 1 });
    failed?.settle(new Error("SQLITE_FULL"));
    await expect(a.committed).rejects.toThrow("SQLITE_FULL");
    pending.take()?.settle();
    await expect(b.committed).resolves.toBeUndefined();
  });
});

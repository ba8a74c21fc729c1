/**
 * Group commit for admission's writes. Deciding is cheap (the windows are in memory); what costs is
 * the SQLite commit of every turn that writes, one per call when each admission writes its own. So a
 * plain admission (windows and ledger only) charges the in-memory windows at once — every later
 * decision sees it, so the limits stay exact — and parks its writes here. They are written together
 * by the next transaction: a timer set by the first of the group, or any other transaction of the
 * object, whichever comes first. Each admission answers only once the commit carrying its charge
 * has succeeded (and the runtime's output gate holds the answer until that commit is durable), so
 * no request reaches the origin on a charge that could still be lost; if the commit fails, every
 * admission in it fails with it and the object's memory is reset from SQLite.
 *
 * Pure bookkeeping: no storage, no timers (tenant.ts does both).
 */
import type { QuotaUsage } from "./quota";
import type { BucketState as Bucket } from "./token-bucket";

/** What one group writes: each window's latest state, and the ledger's increments per hour. */
export interface GroupWrites {
  buckets: { name: string; state: Bucket }[];
  quotas: { name: string; usage: QuotaUsage }[];
  ledger: { hour: number; requests: number; units: number }[];
  /** Called once the group's transaction committed (no argument) or failed (its error). */
  settle(error?: unknown): void;
}

export class PendingWrites {
  private buckets = new Map<string, Bucket>();
  private quotas = new Map<string, QuotaUsage>();
  private ledger = new Map<number, { requests: number; units: number }>();
  private group: { committed: Promise<void>; resolve(): void; reject(error: unknown): void } | null = null;

  /** True when nothing waits for a commit. */
  get empty(): boolean {
    return this.group === null;
  }

  /**
   * Parks one admission's writes (later states of a window replace earlier ones; ledger counts
   * add up). Answers the promise of the commit that will carry them, and whether this admission
   * opened the group (then the caller schedules its commit).
   */
  add(
    buckets: readonly { name: string; state: Bucket }[],
    quotas: readonly { name: string; usage: QuotaUsage }[],
    ledger: { hour: number; units: number } | null,
  ): { committed: Promise<void>; opened: boolean } {
    for (const { name, state } of buckets) this.buckets.set(name, state);
    for (const { name, usage } of quotas) this.quotas.set(name, usage);
    if (ledger) {
      const hour = this.ledger.get(ledger.hour);
      if (hour) {
        hour.requests += 1;
        hour.units += ledger.units;
      } else this.ledger.set(ledger.hour, { requests: 1, units: ledger.units });
    }
    const opened = this.group === null;
    if (!this.group) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const committed = new Promise<void>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Every admission awaits it; this keeps a failed group from also being an unhandled rejection.
      committed.catch(() => {});
      this.group = { committed, resolve, reject };
    }
    return { committed: this.group.committed, opened };
  }

  /** Takes everything parked, for the transaction about to run; null when nothing is. */
  take(): GroupWrites | null {
    const group = this.group;
    if (!group) return null;
    const writes: GroupWrites = {
      buckets: [...this.buckets].map(([name, state]) => ({ name, state })),
      quotas: [...this.quotas].map(([name, usage]) => ({ name, usage })),
      ledger: [...this.ledger].map(([hour, counts]) => ({ hour, ...counts })),
      settle: (error?: unknown) => (error === undefined ? group.resolve() : group.reject(error)),
    };
    this.buckets = new Map();
    this.quotas = new Map();
    this.ledger = new Map();
    this.group = null;
    return writes;
  }
}

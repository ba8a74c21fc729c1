/**
 * When did each usage row become visible in Postgres? The schema has no insert-time column, so:
 * a poller takes `pg_current_snapshot()` with `clock_timestamp()` every `intervalMs` (a cheap query:
 * no table is read). Afterwards each row's inserting transaction (`xmin`) is tested against those
 * snapshots: the first snapshot that sees it is when the row had become visible, at most one poll
 * interval after its commit. Lag = that time − the event's `ts` (the admission time on the tenant
 * Durable Object's clock, same host clock as Postgres). Resolution: one poll interval; the value is
 * an upper bound.
 */
import type pg from "pg";

interface Snapshot {
  /** ms since the epoch, from Postgres' clock_timestamp() */
  t: number;
  xmin: number;
  xmax: number;
  xip: Set<number>;
}

/** xid8 → the 32-bit xid that `xmin` holds (no wraparound within one bench run). */
const low32 = (v: string) => Number(BigInt(v) & 0xffffffffn);

export class SnapshotPoller {
  readonly snapshots: Snapshot[] = [];
  private timer: NodeJS.Timeout | null = null;
  private inFlight = false;

  constructor(
    private readonly pool: pg.Pool,
    readonly intervalMs = 50,
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.poll(), this.intervalMs);
    void this.poll();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    while (this.inFlight) await new Promise((r) => setTimeout(r, 5));
    await this.poll(); // one last snapshot after everything that was awaited
  }

  private async poll(): Promise<void> {
    if (this.inFlight) return;
    this.inFlight = true;
    try {
      const { rows } = await this.pool.query<{ t: string; s: string }>(
        "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::text AS t, pg_current_snapshot()::text AS s",
      );
      const row = rows[0];
      if (row) {
        const [xmin = "0", xmax = "0", xip = ""] = row.s.split(":");
        this.snapshots.push({
          t: Number(row.t),
          xmin: low32(xmin),
          xmax: low32(xmax),
          xip: new Set(xip ? xip.split(",").map(low32) : []),
        });
      }
    } catch {
      // a failed poll only lowers the resolution
    } finally {
      this.inFlight = false;
    }
  }

  /** Time (ms) of the first snapshot that sees a row inserted by transaction `xid`, or null. */
  visibleAt(xid: number): number | null {
    const visible = (s: Snapshot) => xid < s.xmin || (xid < s.xmax && !s.xip.has(xid));
    const snaps = this.snapshots;
    let lo = 0;
    let hi = snaps.length; // first index where visible (visibility only ever turns on)
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (visible(snaps[mid] as Snapshot)) hi = mid;
      else lo = mid + 1;
    }
    return lo < snaps.length ? (snaps[lo] as Snapshot).t : null;
  }

  /** Median interval between consecutive snapshots (the method's resolution), ms. */
  resolutionMs(): number {
    const gaps: number[] = [];
    for (let i = 1; i < this.snapshots.length; i++)
      gaps.push((this.snapshots[i] as Snapshot).t - (this.snapshots[i - 1] as Snapshot).t);
    gaps.sort((a, b) => a - b);
    return gaps.length ? (gaps[gaps.length >> 1] as number) : this.intervalMs;
  }
}

export interface RowTiming {
  /** event ts, ms */
  ts: number;
  /** first seen, ms (null if never seen by a snapshot) */
  visible: number | null;
}

/** ts and visibility of every usage row of `tenantId` with ts in [fromMs, toMs]. */
export async function rowTimings(
  pool: pg.Pool,
  poller: SnapshotPoller,
  tenantId: string,
  fromMs = 0,
  toMs = Number.MAX_SAFE_INTEGER,
): Promise<RowTiming[]> {
  const { rows } = await pool.query<{ x: string; ts: string }>(
    `SELECT xmin::text AS x, (extract(epoch FROM ts) * 1000)::text AS ts
       FROM usage_events WHERE tenant_id = $1`,
    [tenantId],
  );
  return rows
    .map((r) => ({ ts: Number(r.ts), visible: poller.visibleAt(Number(r.x)) }))
    .filter((r) => r.ts >= fromMs && r.ts <= toMs);
}

export async function countRows(pool: pg.Pool, tenantId: string): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(
    "SELECT count(*)::text AS n FROM usage_events WHERE tenant_id = $1",
    [tenantId],
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * Polls the tenant's usage row count until it reaches `expected` (or, with `expected` null, until it
 * has not changed for `quietMs`), bounded by `timeoutMs`. Returns the last count and when it settled.
 */
export async function waitForRows(
  pool: pg.Pool,
  tenantId: string,
  opts: { expected: number | null; quietMs: number; timeoutMs: number; everyMs?: number },
): Promise<{ rows: number; settledAt: number; timedOut: boolean }> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = -1;
  let lastChange = Date.now();
  for (;;) {
    const n = await countRows(pool, tenantId);
    const now = Date.now();
    if (n !== last) {
      last = n;
      lastChange = now;
    }
    if (opts.expected !== null && n >= opts.expected) return { rows: n, settledAt: now, timedOut: false };
    if (opts.expected === null && now - lastChange >= opts.quietMs)
      return { rows: n, settledAt: lastChange, timedOut: false };
    if (now > deadline) return { rows: n, settledAt: lastChange, timedOut: true };
    await new Promise((r) => setTimeout(r, opts.everyMs ?? 100));
  }
}

/**
 * UsageSpool: where usage batches go when the queue refuses them (`USAGE_SPOOL.getByName(
 * "usage-spool-<n>")`, a few shards picked at random by the producer). Each batch is one SQLite row,
 * kept until the queue has accepted it; an alarm re-sends the rows oldest first, backing off while
 * the queue stays down. A row is deleted only after its `send` resolved, so a batch is never
 * dropped; if the delete itself were lost the batch would be sent again, and the consumer stores
 * each event id once.
 *
 * Imports nothing from workers/: it knows the envelope's shape (`{ v: 2, events, audit? }`), not its
 * schema (the consumer validates every event and audit record).
 */
import { DurableObject } from "cloudflare:workers";

/** The bindings the spool uses (the Worker's env has more). */
export interface SpoolEnv {
  USAGE_QUEUE: Queue<unknown>;
}

/** Rows re-sent per alarm run before the alarm re-arms itself immediately for the rest. */
const RESEND_PER_RUN = 50;
const MAX_RESEND_DELAY_MS = 60_000;

/** Delay before the next re-send after `failures` consecutive failed ones: 1 s, 2 s, 4 s … capped at 60 s. */
export function resendDelayMs(failures: number): number {
  return Math.min(MAX_RESEND_DELAY_MS, 1_000 * 2 ** Math.max(0, failures));
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL,
    events INTEGER NOT NULL,
    spooled_at INTEGER NOT NULL
  );
  CREATE TABLE IF NOT EXISTS resend (id INTEGER PRIMARY KEY CHECK (id = 1), failures INTEGER NOT NULL);
`;

export class UsageSpool extends DurableObject<SpoolEnv> {
  private readonly sql: SqlStorage;

  constructor(ctx: DurableObjectState, env: SpoolEnv) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    ctx.blockConcurrencyWhile(async () => {
      this.sql.exec(SCHEMA);
    });
  }

  /**
   * Stores one batch of usage events (and the request audit records packed with them) durably and
   * makes sure a re-send is scheduled. `events` in `pending()` counts the usage events.
   */
  async spool(events: unknown[], audit: unknown[] = []): Promise<void> {
    if (events.length === 0 && audit.length === 0) return;
    this.sql.exec(
      "INSERT INTO spool (body, events, spooled_at) VALUES (?, ?, ?)",
      JSON.stringify(audit.length > 0 ? { v: 2, events, audit } : { v: 2, events }),
      events.length,
      Date.now(),
    );
    if ((await this.ctx.storage.getAlarm()) === null)
      await this.ctx.storage.setAlarm(Date.now() + resendDelayMs(this.failures()));
  }

  /** What is waiting to be re-sent. */
  async pending(): Promise<{ batches: number; events: number }> {
    const row = this.sql
      .exec<{ batches: number; events: number }>(
        "SELECT count(*) AS batches, coalesce(sum(events), 0) AS events FROM spool",
      )
      .one();
    return { batches: row.batches, events: row.events };
  }

  /** Re-sends spooled batches oldest first; stops at the first refusal and backs off. */
  override async alarm(): Promise<void> {
    const rows = this.sql
      .exec<{ seq: number; body: string }>("SELECT seq, body FROM spool ORDER BY seq LIMIT ?", RESEND_PER_RUN)
      .toArray();
    for (const row of rows) {
      try {
        await this.env.USAGE_QUEUE.send(JSON.parse(row.body), { contentType: "json" });
      } catch {
        const failures = this.failures() + 1;
        this.sql.exec(
          "INSERT INTO resend (id, failures) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET failures = excluded.failures",
          failures,
        );
        await this.ctx.storage.setAlarm(Date.now() + resendDelayMs(failures));
        return;
      }
      this.sql.exec("DELETE FROM spool WHERE seq = ?", row.seq);
    }
    this.sql.exec("DELETE FROM resend");
    // More than one run's worth: continue right away.
    if ((await this.pending()).batches > 0) await this.ctx.storage.setAlarm(Date.now());
  }

  private failures(): number {
    return (
      this.sql.exec<{ failures: number }>("SELECT failures FROM resend WHERE id = 1").toArray()[0]
        ?.failures ?? 0
    );
  }
}

/**
 * The dead-letter store: every message that reached the usage DLQ (`gateway-usage-dlq`), kept so
 * the operator can see what failed and why, and send it back through the pipeline (the console's
 * dead-letter page). Two kinds arrive: events the consumer could never store (invalid, unknown
 * tenant: `reason` says which), and whole messages the queue gave up on after `max_retries` (no
 * reason of their own: Postgres was down for hours). A replay re-sends `body` to the usage queue;
 * the consumer's per-event-id idempotency makes a replay of already-stored events a no-op.
 */
import { index, integer, jsonb, pgTable, text, timestamp } from "drizzle-orm/pg-core";

export const deadLetters = pgTable(
  "dead_letters",
  {
    /** The DLQ message's id: a redelivered DLQ message is stored once. */
    id: text("id").primaryKey(),
    /** The queue the message failed on. */
    queue: text("queue").notNull(),
    /** What the consumer said, or null when the queue exhausted its retries. */
    reason: text("reason"),
    /** The message as it will be re-sent on replay. */
    body: jsonb("body").notNull(),
    /** Usage events in the message (for the console's list). */
    events: integer("events").notNull().default(0),
    receivedAt: timestamp("received_at", { withTimezone: true }).notNull(),
    /** How often the operator replayed it, and when last. */
    replays: integer("replays").notNull().default(0),
    replayedAt: timestamp("replayed_at", { withTimezone: true }),
  },
  (t) => [index("dead_letters_received_idx").on(t.receivedAt)],
).enableRLS();

export type DeadLetter = typeof deadLetters.$inferSelect;

DROP INDEX "billing_outbox_tenant_hour_idx";--> statement-breakpoint
ALTER TABLE "billing_outbox" ADD COLUMN "seq" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "billing_outbox" ADD COLUMN "closed_at" timestamp with time zone;--> statement-breakpoint
-- Existing rows (one per consumer batch per tenant-hour) take the new shape. A row that was ever
-- claimed or is settled keeps its id (Stripe may hold that identifier already), is closed and numbered
-- within its tenant-hour. Rows never claimed (pending, 0 attempts) never reached Stripe: they merge into
-- one open row per tenant-hour after those, with the new id. Units are moved, never added or dropped.
UPDATE "billing_outbox" o SET "seq" = n.seq, "closed_at" = o."created_at"
FROM (
  SELECT "id", row_number() OVER (PARTITION BY "tenant_id", "hour" ORDER BY "created_at", "id") - 1 AS seq
  FROM "billing_outbox" WHERE NOT ("state" = 'pending' AND "attempts" = 0)
) n
WHERE o."id" = n."id";--> statement-breakpoint
WITH merged AS (
  DELETE FROM "billing_outbox" WHERE "state" = 'pending' AND "attempts" = 0
  RETURNING "tenant_id", "hour", "units", "created_at"
), grouped AS (
  SELECT "tenant_id", "hour", sum("units") AS units, min("created_at") AS created_at FROM merged GROUP BY 1, 2
)
INSERT INTO "billing_outbox" ("id", "tenant_id", "hour", "seq", "units", "created_at")
SELECT 'gwh:' || g."tenant_id" || ':' || extract(epoch FROM g."hour")::bigint || ':' || s.seq,
  g."tenant_id", g."hour", s.seq, g.units, g.created_at
FROM grouped g CROSS JOIN LATERAL (
  SELECT coalesce(max(b."seq") + 1, 0) AS seq FROM "billing_outbox" b
  WHERE b."tenant_id" = g."tenant_id" AND b."hour" = g."hour" AND NOT (b."state" = 'pending' AND b."attempts" = 0)
) s;--> statement-breakpoint
CREATE UNIQUE INDEX "billing_outbox_tenant_hour_seq_idx" ON "billing_outbox" USING btree ("tenant_id","hour","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "billing_outbox_open_idx" ON "billing_outbox" USING btree ("tenant_id","hour") WHERE closed_at IS NULL;
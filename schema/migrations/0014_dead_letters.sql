CREATE TABLE "dead_letters" (
	"id" text PRIMARY KEY NOT NULL,
	"queue" text NOT NULL,
	"reason" text,
	"body" jsonb NOT NULL,
	"events" integer DEFAULT 0 NOT NULL,
	"received_at" timestamp with time zone NOT NULL,
	"replays" integer DEFAULT 0 NOT NULL,
	"replayed_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "dead_letters" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE INDEX "dead_letters_received_idx" ON "dead_letters" USING btree ("received_at");
CREATE TYPE "public"."tenant_status_reason" AS ENUM('operator', 'billing');--> statement-breakpoint
CREATE TABLE "stripe_events" (
	"id" text PRIMARY KEY NOT NULL,
	"type" text NOT NULL,
	"stripe_created_at" timestamp with time zone NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL,
	"tenant_id" text,
	"outcome" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "status_reason" "tenant_status_reason" DEFAULT 'operator' NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "past_due_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "grace_until" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "stripe_events_tenant_idx" ON "stripe_events" USING btree ("tenant_id","received_at");
CREATE TYPE "public"."billing_sync_row_state" AS ENUM('pending', 'ok', 'failed', 'superseded');--> statement-breakpoint
CREATE TYPE "public"."billing_sync_state" AS ENUM('pending', 'ok', 'failed');--> statement-breakpoint
CREATE TABLE "billing_sync" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"plan_id" text NOT NULL,
	"pricing_version" integer NOT NULL,
	"prorate" boolean NOT NULL,
	"state" "billing_sync_row_state" DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_error" text,
	"done_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "plan_pricing_versions" (
	"plan_id" text NOT NULL,
	"version" integer NOT NULL,
	"pricing" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "plan_pricing_versions_plan_id_version_pk" PRIMARY KEY("plan_id","version")
);
--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "pricing" jsonb DEFAULT '{"model":"free"}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "pricing_version" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "stripe_subscription_id" text;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "billing_plan_id" text;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "billing_pricing_version" integer;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "billing_period_end" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "billing_sync" "billing_sync_state" DEFAULT 'pending' NOT NULL;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "billing_error" text;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "billing_locked_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "billing_sync" ADD CONSTRAINT "billing_sync_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "plan_pricing_versions" ADD CONSTRAINT "plan_pricing_versions_plan_id_plans_id_fk" FOREIGN KEY ("plan_id") REFERENCES "public"."plans"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "billing_sync_due_idx" ON "billing_sync" USING btree ("state","next_attempt_at");--> statement-breakpoint
CREATE INDEX "billing_sync_tenant_idx" ON "billing_sync" USING btree ("tenant_id","created_at");--> statement-breakpoint
ALTER TABLE "plans" DROP COLUMN "stripe_price_id";--> statement-breakpoint
-- Data: the pricing every existing plan has now is its version 1, and every existing tenant gets a
-- billing sync row, so the cron makes (or confirms) its Stripe side.
INSERT INTO "plan_pricing_versions" ("plan_id", "version", "pricing") SELECT "id", 1, "pricing" FROM "plans";--> statement-breakpoint
INSERT INTO "billing_sync" ("id", "tenant_id", "plan_id", "pricing_version", "prorate") SELECT 'bsync_' || "id", "id", "plan_id", 1, false FROM "tenants";

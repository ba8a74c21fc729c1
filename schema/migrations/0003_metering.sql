CREATE TYPE "public"."outbox_state" AS ENUM('pending', 'sent', 'failed');--> statement-breakpoint
CREATE TYPE "public"."rollup_granularity" AS ENUM('hour', 'day');--> statement-breakpoint
CREATE TABLE "billing_outbox" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"hour" timestamp with time zone NOT NULL,
	"units" bigint NOT NULL,
	"state" "outbox_state" DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_error" text,
	"sent_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "billing_outbox" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "usage_rollups" (
	"tenant_id" text NOT NULL,
	"granularity" "rollup_granularity" NOT NULL,
	"bucket_start" timestamp with time zone NOT NULL,
	"route" text NOT NULL,
	"status_class" smallint NOT NULL,
	"requests" bigint NOT NULL,
	"billable_requests" bigint NOT NULL,
	"billable_units" bigint NOT NULL,
	"bytes_in" bigint NOT NULL,
	"bytes_out" bigint NOT NULL,
	"latency_histogram" integer[] NOT NULL,
	CONSTRAINT "usage_rollups_tenant_id_granularity_bucket_start_route_status_class_pk" PRIMARY KEY("tenant_id","granularity","bucket_start","route","status_class")
);
--> statement-breakpoint
ALTER TABLE "usage_rollups" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "billing_outbox" ADD CONSTRAINT "billing_outbox_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "usage_rollups" ADD CONSTRAINT "usage_rollups_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "billing_outbox_due_idx" ON "billing_outbox" USING btree ("state","next_attempt_at");--> statement-breakpoint
CREATE INDEX "billing_outbox_tenant_hour_idx" ON "billing_outbox" USING btree ("tenant_id","hour");--> statement-breakpoint
CREATE POLICY "billing_outbox_tenant" ON "billing_outbox" AS PERMISSIVE FOR SELECT TO "gateway_tenant" USING ("billing_outbox"."tenant_id" = current_setting('app.tenant_id', true));--> statement-breakpoint
CREATE POLICY "usage_rollups_tenant" ON "usage_rollups" AS PERMISSIVE FOR SELECT TO "gateway_tenant" USING ("usage_rollups"."tenant_id" = current_setting('app.tenant_id', true));
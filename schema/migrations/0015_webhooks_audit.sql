CREATE SCHEMA "audit";
--> statement-breakpoint
CREATE TYPE "public"."webhook_delivery_status" AS ENUM('pending', 'succeeded', 'dead', 'cancelled');--> statement-breakpoint
CREATE TABLE "audit"."actions" (
	"chain" text NOT NULL,
	"seq" bigint NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"actor_type" text NOT NULL,
	"actor_id" text NOT NULL,
	"action" text NOT NULL,
	"targets" jsonb NOT NULL,
	"changes" jsonb NOT NULL,
	"request_id" text,
	"client_ip" text,
	"user_agent" text,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL,
	CONSTRAINT "actions_chain_seq_pk" PRIMARY KEY("chain","seq")
);
--> statement-breakpoint
ALTER TABLE "audit"."actions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "audit"."chains" (
	"chain" text NOT NULL,
	"log" text NOT NULL,
	"seq" bigint DEFAULT 0 NOT NULL,
	"head" text NOT NULL,
	"pruned_seq" bigint DEFAULT 0 NOT NULL,
	"pruned_head" text NOT NULL,
	CONSTRAINT "chains_chain_log_pk" PRIMARY KEY("chain","log")
);
--> statement-breakpoint
ALTER TABLE "audit"."chains" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "audit"."requests" (
	"chain" text NOT NULL,
	"seq" bigint NOT NULL,
	"request_id" text NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"key_id" text NOT NULL,
	"method" text NOT NULL,
	"route" text NOT NULL,
	"status" integer NOT NULL,
	"client_ip" text,
	"user_agent" text,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL,
	CONSTRAINT "requests_chain_seq_pk" PRIMARY KEY("chain","seq"),
	CONSTRAINT "requests_request_id_unique" UNIQUE("request_id")
);
--> statement-breakpoint
ALTER TABLE "audit"."requests" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "route_notices" (
	"prefix" text NOT NULL,
	"fingerprint" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "route_notices_prefix_fingerprint_pk" PRIMARY KEY("prefix","fingerprint")
);
--> statement-breakpoint
ALTER TABLE "route_notices" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "webhook_attempts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"delivery_id" text NOT NULL,
	"attempt" integer NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"status" integer,
	"latency_ms" integer NOT NULL,
	"response_excerpt" text,
	"error" text
);
--> statement-breakpoint
ALTER TABLE "webhook_attempts" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "webhook_deliveries" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"event_id" text NOT NULL,
	"endpoint_id" text NOT NULL,
	"status" "webhook_delivery_status" DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"next_attempt_at" timestamp with time zone,
	"claimed_until" timestamp with time zone,
	"last_status" integer,
	"last_error" text,
	"replays" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "webhook_endpoints" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"url" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"event_types" text[] DEFAULT '{}'::text[] NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"disabled_reason" text,
	"secret" text NOT NULL,
	"previous_secret" text,
	"previous_secret_until" timestamp with time zone,
	"failing_since" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "webhook_events" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"type" text NOT NULL,
	"data" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "webhook_events" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "webhook_attempts" ADD CONSTRAINT "webhook_attempts_delivery_id_webhook_deliveries_id_fk" FOREIGN KEY ("delivery_id") REFERENCES "public"."webhook_deliveries"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_event_id_webhook_events_id_fk" FOREIGN KEY ("event_id") REFERENCES "public"."webhook_events"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_endpoint_id_webhook_endpoints_id_fk" FOREIGN KEY ("endpoint_id") REFERENCES "public"."webhook_endpoints"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_endpoints" ADD CONSTRAINT "webhook_endpoints_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "webhook_events" ADD CONSTRAINT "webhook_events_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "actions_occurred_idx" ON "audit"."actions" USING btree ("occurred_at");--> statement-breakpoint
CREATE INDEX "actions_chain_occurred_idx" ON "audit"."actions" USING btree ("chain","occurred_at");--> statement-breakpoint
CREATE INDEX "requests_occurred_idx" ON "audit"."requests" USING btree ("occurred_at");--> statement-breakpoint
CREATE INDEX "requests_chain_occurred_idx" ON "audit"."requests" USING btree ("chain","occurred_at");--> statement-breakpoint
CREATE INDEX "webhook_attempts_delivery_idx" ON "webhook_attempts" USING btree ("delivery_id","attempt");--> statement-breakpoint
CREATE INDEX "webhook_attempts_started_idx" ON "webhook_attempts" USING btree ("started_at");--> statement-breakpoint
CREATE UNIQUE INDEX "webhook_deliveries_event_endpoint_idx" ON "webhook_deliveries" USING btree ("event_id","endpoint_id");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_endpoint_created_idx" ON "webhook_deliveries" USING btree ("endpoint_id","created_at");--> statement-breakpoint
CREATE INDEX "webhook_deliveries_due_idx" ON "webhook_deliveries" USING btree ("next_attempt_at") WHERE "webhook_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_dead_idx" ON "webhook_deliveries" USING btree ("updated_at") WHERE "webhook_deliveries"."status" = 'dead';--> statement-breakpoint
CREATE INDEX "webhook_deliveries_created_idx" ON "webhook_deliveries" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "webhook_endpoints_tenant_idx" ON "webhook_endpoints" USING btree ("tenant_id");--> statement-breakpoint
CREATE INDEX "webhook_events_tenant_created_idx" ON "webhook_events" USING btree ("tenant_id","created_at");--> statement-breakpoint
CREATE INDEX "webhook_events_created_idx" ON "webhook_events" USING btree ("created_at");--> statement-breakpoint
CREATE POLICY "actions_self" ON "audit"."actions" AS PERMISSIVE FOR SELECT TO "gateway_tenant" USING ("audit"."actions"."chain" = current_setting('app.tenant_id', true));--> statement-breakpoint
CREATE POLICY "requests_self" ON "audit"."requests" AS PERMISSIVE FOR SELECT TO "gateway_tenant" USING ("audit"."requests"."chain" = current_setting('app.tenant_id', true));--> statement-breakpoint
CREATE POLICY "webhook_attempts_self" ON "webhook_attempts" AS PERMISSIVE FOR SELECT TO "gateway_tenant" USING ("webhook_attempts"."tenant_id" = current_setting('app.tenant_id', true));--> statement-breakpoint
CREATE POLICY "webhook_deliveries_self" ON "webhook_deliveries" AS PERMISSIVE FOR SELECT TO "gateway_tenant" USING ("webhook_deliveries"."tenant_id" = current_setting('app.tenant_id', true));--> statement-breakpoint
CREATE POLICY "webhook_endpoints_self" ON "webhook_endpoints" AS PERMISSIVE FOR ALL TO "gateway_tenant" USING ("webhook_endpoints"."tenant_id" = current_setting('app.tenant_id', true)) WITH CHECK ("webhook_endpoints"."tenant_id" = current_setting('app.tenant_id', true));--> statement-breakpoint
CREATE POLICY "webhook_events_self" ON "webhook_events" AS PERMISSIVE FOR SELECT TO "gateway_tenant" USING ("webhook_events"."tenant_id" = current_setting('app.tenant_id', true));--> statement-breakpoint
-- The tenant role reads its own audit entries, webhook events, deliveries and attempts, and manages
-- its own endpoints, all under the row-level-security policies above.
GRANT USAGE ON SCHEMA audit TO gateway_tenant;--> statement-breakpoint
GRANT SELECT ON audit.actions, audit.requests TO gateway_tenant;--> statement-breakpoint
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_endpoints TO gateway_tenant;--> statement-breakpoint
GRANT SELECT ON webhook_events, webhook_deliveries, webhook_attempts TO gateway_tenant;

CREATE TABLE "shadow_mismatches" (
	"request_id" text PRIMARY KEY NOT NULL,
	"route" text NOT NULL,
	"tenant_id" text NOT NULL,
	"method" text NOT NULL,
	"path" text NOT NULL,
	"diff" jsonb NOT NULL,
	"primary_latency_ms" integer NOT NULL,
	"shadow_latency_ms" integer NOT NULL,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "shadow_results" (
	"route" text NOT NULL,
	"hour" timestamp with time zone NOT NULL,
	"compared" integer DEFAULT 0 NOT NULL,
	"matched" integer DEFAULT 0 NOT NULL,
	"mismatched" integer DEFAULT 0 NOT NULL,
	"failed" integer DEFAULT 0 NOT NULL,
	"primary_latency_ms" bigint DEFAULT 0 NOT NULL,
	"shadow_latency_ms" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "shadow_results_route_hour_pk" PRIMARY KEY("route","hour")
);
--> statement-breakpoint
ALTER TABLE "plans" ADD COLUMN "admission_mode" text DEFAULT 'exact' NOT NULL;--> statement-breakpoint
CREATE INDEX "shadow_mismatches_route_at_idx" ON "shadow_mismatches" USING btree ("route","at");--> statement-breakpoint
ALTER TABLE "plans" ADD CONSTRAINT "plans_admission_mode_check" CHECK ("admission_mode" IN ('exact', 'leased'));

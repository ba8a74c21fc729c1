CREATE TYPE "public"."credit_entry_kind" AS ENUM('grant', 'usage', 'refund', 'adjustment');--> statement-breakpoint
CREATE TABLE "credit_ledger" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"kind" "credit_entry_kind" NOT NULL,
	"units" integer NOT NULL,
	"amount" integer,
	"currency" text,
	"stripe_checkout_session_id" text,
	"stripe_event_id" text,
	"hour" timestamp with time zone,
	"reason" text,
	"actor" text,
	"applied_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "credit_ledger_stripe_checkout_session_id_unique" UNIQUE("stripe_checkout_session_id"),
	CONSTRAINT "credit_ledger_units_nonzero" CHECK ("credit_ledger"."units" <> 0),
	CONSTRAINT "credit_ledger_kind_fields" CHECK (("credit_ledger"."kind" <> 'usage' OR "credit_ledger"."hour" IS NOT NULL) AND ("credit_ledger"."kind" <> 'adjustment' OR ("credit_ledger"."reason" IS NOT NULL AND "credit_ledger"."actor" IS NOT NULL)))
);
--> statement-breakpoint
ALTER TABLE "credit_ledger" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "credit_ledger" ADD CONSTRAINT "credit_ledger_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "credit_ledger_tenant_created_idx" ON "credit_ledger" USING btree ("tenant_id","created_at");--> statement-breakpoint
CREATE POLICY "credit_ledger_self" ON "credit_ledger" AS PERMISSIVE FOR SELECT TO "gateway_tenant" USING ("credit_ledger"."tenant_id" = current_setting('app.tenant_id', true));--> statement-breakpoint
GRANT SELECT ON credit_ledger TO gateway_tenant;
CREATE TABLE "invoices" (
	"id" text PRIMARY KEY NOT NULL,
	"tenant_id" text NOT NULL,
	"stripe_subscription_id" text,
	"number" text,
	"status" text NOT NULL,
	"currency" text NOT NULL,
	"subtotal" bigint NOT NULL,
	"total" bigint NOT NULL,
	"amount_due" bigint NOT NULL,
	"amount_paid" bigint NOT NULL,
	"amount_remaining" bigint NOT NULL,
	"period_start" timestamp with time zone NOT NULL,
	"period_end" timestamp with time zone NOT NULL,
	"hosted_invoice_url" text,
	"invoice_pdf" text,
	"stripe_created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "invoices" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "config_version" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "invoices" ADD CONSTRAINT "invoices_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "invoices_tenant_created_idx" ON "invoices" USING btree ("tenant_id","stripe_created_at");--> statement-breakpoint
CREATE POLICY "invoices_self" ON "invoices" AS PERMISSIVE FOR SELECT TO "gateway_tenant" USING ("invoices"."tenant_id" = current_setting('app.tenant_id', true));--> statement-breakpoint
GRANT SELECT ON invoices TO gateway_tenant;--> statement-breakpoint
-- Data: every tenant starts from the version the edge already knows (the ms of its or its plan's last change).
UPDATE "tenants" SET "config_version" = (extract(epoch FROM greatest("tenants"."updated_at", "plans"."updated_at")) * 1000)::bigint FROM "plans" WHERE "plans"."id" = "tenants"."plan_id";--> statement-breakpoint
-- Every change of a tenant, or of its plan, bumps the tenant's config version: to the clock's ms, or
-- by one when the last bump was in the same ms, so two changes never share a version.
CREATE FUNCTION "bump_config_version"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.config_version := greatest(OLD.config_version + 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
  RETURN NEW;
END $$;--> statement-breakpoint
CREATE TRIGGER "tenants_config_version" BEFORE UPDATE ON "tenants" FOR EACH ROW EXECUTE FUNCTION "bump_config_version"();--> statement-breakpoint
CREATE FUNCTION "bump_plan_tenants_config_version"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE tenants SET updated_at = updated_at WHERE plan_id = NEW.id;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER "plans_config_version" AFTER UPDATE ON "plans" FOR EACH ROW EXECUTE FUNCTION "bump_plan_tenants_config_version"();--> statement-breakpoint
CREATE FUNCTION "initial_config_version"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.config_version := (extract(epoch FROM clock_timestamp()) * 1000)::bigint;
  RETURN NEW;
END $$;--> statement-breakpoint
CREATE TRIGGER "tenants_initial_config_version" BEFORE INSERT ON "tenants" FOR EACH ROW EXECUTE FUNCTION "initial_config_version"();

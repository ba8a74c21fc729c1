CREATE TYPE "public"."portal_code_purpose" AS ENUM('link', 'signup', 'signin');--> statement-breakpoint
CREATE TYPE "public"."web_session_kind" AS ENUM('portal', 'console');--> statement-breakpoint
CREATE TYPE "public"."web_session_via" AS ENUM('link', 'signup', 'signin', 'admin_token');--> statement-breakpoint
CREATE TABLE "portal_codes" (
	"id" text PRIMARY KEY NOT NULL,
	"code_hash" text NOT NULL,
	"purpose" "portal_code_purpose" NOT NULL,
	"tenant_id" text,
	"email" text,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	CONSTRAINT "portal_codes_code_hash_unique" UNIQUE("code_hash"),
	CONSTRAINT "portal_codes_purpose_fields" CHECK (("portal_codes"."purpose" = 'signup' OR "portal_codes"."tenant_id" IS NOT NULL) AND ("portal_codes"."purpose" = 'link' OR "portal_codes"."email" IS NOT NULL))
);
--> statement-breakpoint
ALTER TABLE "portal_codes" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
CREATE TABLE "web_sessions" (
	"id" text PRIMARY KEY NOT NULL,
	"token_hash" text NOT NULL,
	"kind" "web_session_kind" NOT NULL,
	"tenant_id" text,
	"via" "web_session_via" NOT NULL,
	"email" text,
	"client_ip" text,
	"user_agent" text,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "web_sessions_token_hash_unique" UNIQUE("token_hash"),
	CONSTRAINT "web_sessions_kind_tenant" CHECK (("web_sessions"."kind" = 'portal') = ("web_sessions"."tenant_id" IS NOT NULL))
);
--> statement-breakpoint
ALTER TABLE "web_sessions" ENABLE ROW LEVEL SECURITY;--> statement-breakpoint
ALTER TABLE "tenants" ADD COLUMN "email" text;--> statement-breakpoint
ALTER TABLE "portal_codes" ADD CONSTRAINT "portal_codes_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "web_sessions" ADD CONSTRAINT "web_sessions_tenant_id_tenants_id_fk" FOREIGN KEY ("tenant_id") REFERENCES "public"."tenants"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "portal_codes_tenant_idx" ON "portal_codes" USING btree ("tenant_id");--> statement-breakpoint
CREATE INDEX "web_sessions_tenant_idx" ON "web_sessions" USING btree ("tenant_id");--> statement-breakpoint
ALTER TABLE "tenants" ADD CONSTRAINT "tenants_email_unique" UNIQUE("email");
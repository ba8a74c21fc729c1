/**
 * The database role tenant-facing queries run as (created, idempotently, by migration 0000_roles:
 * roles are cluster-wide, so a second database on the same server must not fail on it).
 * It owns nothing and bypasses nothing: every tenant-scoped table has a row-level-security policy keyed on `app.tenant_id`,
 * which `withTenant()` (workers/shared/db.ts) sets per transaction with `SET LOCAL ROLE`.
 */
import { sql } from "drizzle-orm";
import { pgRole } from "drizzle-orm/pg-core";

export const tenantRole = pgRole("gateway_tenant").existing();

/** The RLS predicate every tenant-scoped table shares. */
export const currentTenant = sql`current_setting('app.tenant_id', true)`;

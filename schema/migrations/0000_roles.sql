-- Roles are cluster-wide: create the tenant role only if this server does not have it yet,
-- and let the migrating (login) user switch to it with SET LOCAL ROLE.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'gateway_tenant') THEN
    CREATE ROLE gateway_tenant NOLOGIN;
  END IF;
END
$$;--> statement-breakpoint
DO $$
BEGIN
  EXECUTE format('GRANT gateway_tenant TO %I', current_user);
EXCEPTION WHEN others THEN
  RAISE NOTICE 'could not grant gateway_tenant to %: %', current_user, SQLERRM;
END
$$;

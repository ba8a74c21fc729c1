-- What tenant-facing queries may touch; row-level security narrows every table to one tenant.
GRANT USAGE ON SCHEMA public TO gateway_tenant;--> statement-breakpoint
GRANT SELECT ON plans, tenants, api_keys, usage_events TO gateway_tenant;

-- Tenant-facing usage queries read the rollups and the outbox under row-level security.
GRANT SELECT ON usage_rollups, billing_outbox TO gateway_tenant;

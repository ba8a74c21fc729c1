/** The Postgres schema: the source of truth for plans, tenants, keys and usage. */
export * from "./api-keys";
export * from "./audit";
export * from "./billing-outbox";
export * from "./billing-sync";
export * from "./credit-ledger";
export * from "./dead-letters";
export * from "./idempotency-keys";
export * from "./invoices";
export * from "./plans";
export * from "./portal-codes";
export * from "./roles";
export * from "./stripe-events";
export * from "./tenants";
export * from "./usage-events";
export * from "./usage-rollups";
export * from "./web-sessions";
export * from "./webhooks";

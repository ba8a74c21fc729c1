/**
 * What a changing request tells the audit trail about itself (`c.set("audit", …)`): the recorder
 * (workers/audit/) adds the actor, request id, client IP, user agent and time, and appends the
 * entry to the chain of `tenantId` (or the operator's chain when it is null).
 */
export interface AuditDetail {
  /** Dotted verb: `key.create`, `tenant.update`, `webhook_endpoint.rotate_secret`… */
  action: string;
  /** The tenant the change belongs to; null for operator-wide changes (plans). */
  tenantId: string | null;
  targets: Array<{ type: string; id: string }>;
  /** Changed fields only, never a secret or a key's plaintext. */
  changes?: Record<string, { before: unknown; after: unknown }>;
}

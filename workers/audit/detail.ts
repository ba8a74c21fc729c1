/**
 * What a changing request tells the audit trail about itself (`c.set("audit", …)`): the recorder
 * (workers/audit/) adds the actor, request id, client IP, user agent and time, and appends the
 * entry to the chain of `tenantId` (or the operator's chain when it is null). A request that did two
 * things (a sign-up makes a tenant and starts a session) sets a list, recorded in order.
 */
export interface AuditDetail {
  /** Dotted verb: `key.create`, `tenant.update`, `webhook_endpoint.rotate_secret`… */
  action: string;
  /** The tenant the change belongs to; null for operator-wide changes (plans). */
  tenantId: string | null;
  targets: Array<{ type: string; id: string }>;
  /** Changed fields only, never a secret or a key's plaintext. */
  changes?: Record<string, { before: unknown; after: unknown }>;
  /**
   * Who acted, when the request's own credential is not it: a sign-in names the session it starts
   * (the recorder otherwise takes the admin token, the tenant key or the web session of the request).
   */
  actor?: { type: string; id: string };
}

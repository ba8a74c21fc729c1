/**
 * What a webhooks API change tells the audit trail (`c.set("audit", …)`, workers/audit/detail.ts):
 * the action, the endpoint or delivery it touched, and the fields that changed — never a secret.
 * Shared by the tenant and admin routes.
 */
import type { WebhookDelivery, WebhookEndpoint } from "../../schema";
import type { AuditDetail } from "../audit/detail";
import type { DeliveryView } from "./webhook-endpoints";

/** The fields of an endpoint the trail records (the secrets are left out on purpose). */
const AUDITED = ["url", "description", "eventTypes", "enabled", "disabledReason"] as const;

/** Fields whose value differs between `before` and `after`; null stands for "did not exist". */
export function endpointChanges(
  before: WebhookEndpoint | null,
  after: WebhookEndpoint | null,
): NonNullable<AuditDetail["changes"]> {
  const changes: NonNullable<AuditDetail["changes"]> = {};
  for (const field of AUDITED) {
    const was = before ? before[field] : null;
    const is = after ? after[field] : null;
    if (JSON.stringify(was) !== JSON.stringify(is)) changes[field] = { before: was, after: is };
  }
  return changes;
}

/** `webhook_endpoint.<verb>` on one endpoint. */
export function endpointAudit(
  verb: "create" | "update" | "delete" | "rotate_secret",
  endpoint: WebhookEndpoint,
  changes?: AuditDetail["changes"],
): AuditDetail {
  return {
    action: `webhook_endpoint.${verb}`,
    tenantId: endpoint.tenantId,
    targets: [{ type: "webhook_endpoint", id: endpoint.id }],
    ...(changes === undefined ? {} : { changes }),
  };
}

/** `webhook_endpoint.test`: the endpoint and the delivery the test created. */
export const testAudit = (view: DeliveryView): AuditDetail => ({
  action: "webhook_endpoint.test",
  tenantId: view.delivery.tenantId,
  targets: [
    { type: "webhook_endpoint", id: view.delivery.endpointId },
    { type: "webhook_delivery", id: view.delivery.id },
  ],
});

/** `webhook_delivery.retry`: the status and replay count before and after. */
export const retryAudit = (result: { before: WebhookDelivery; after: DeliveryView }): AuditDetail => ({
  action: "webhook_delivery.retry",
  tenantId: result.before.tenantId,
  targets: [
    { type: "webhook_delivery", id: result.before.id },
    { type: "webhook_endpoint", id: result.before.endpointId },
  ],
  changes: {
    status: { before: result.before.status, after: result.after.delivery.status },
    replays: { before: result.before.replays, after: result.after.delivery.replays },
  },
});

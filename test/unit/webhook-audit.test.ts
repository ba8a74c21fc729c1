/**
 * What the webhooks API tells the audit trail (workers/api/webhook-audit.ts): the changed fields of
 * an endpoint only, and never its secrets.
 */
import { describe, expect, it } from "vitest";
import type { WebhookEndpoint } from "../../schema";
import { endpointAudit, endpointChanges } from "../../workers/api/webhook-audit";

const endpoint = (over: Partial<WebhookEndpoint> = {}): WebhookEndpoint => ({
  id: "whep_1",
  tenantId: "ten_1",
  url: "https://example.com/hooks",
  description: "",
  eventTypes: [],
  enabled: true,
  disabledReason: null,
  secret: "whsec_c2VjcmV0LW5ldw==",
  previousSecret: "whsec_c2VjcmV0LW9sZA==",
  previousSecretUntil: new Date("2026-12-02T00:00:00Z"),
  failingSince: null,
  createdAt: new Date("2026-12-01T00:00:00Z"),
  updatedAt: new Date("2026-12-01T00:00:00Z"),
  ...over,
});

describe("webhook audit details", () => {
  it("records a creation's fields without the secrets", () => {
    const detail = endpointAudit("create", endpoint(), endpointChanges(null, endpoint()));
    expect(detail).toEqual({
      action: "webhook_endpoint.create",
      tenantId: "ten_1",
      targets: [{ type: "webhook_endpoint", id: "whep_1" }],
      changes: {
        url: { before: null, after: "https://example.com/hooks" },
        description: { before: null, after: "" },
        eventTypes: { before: null, after: [] },
        enabled: { before: null, after: true },
      },
    });
    expect(JSON.stringify(detail)).not.toContain("whsec_");
  });

  it("records only the fields an update changed", () => {
    const before = endpoint();
    const after = endpoint({
      enabled: false,
      disabledReason: "tenant",
      eventTypes: ["key.created"],
      secret: "whsec_x",
    });
    expect(endpointChanges(before, after)).toEqual({
      eventTypes: { before: [], after: ["key.created"] },
      enabled: { before: true, after: false },
      disabledReason: { before: null, after: "tenant" },
    });
    expect(endpointChanges(before, before)).toEqual({});
  });
});

import { describe, expect, it } from "vitest";
import { parseUsageMessage } from "../../workers/metering/consumer";
import { clientFields } from "../../workers/metering/producer";
import { RequestAuditRecordSchema, UsageEventSchema } from "../../workers/metering/usage-event";
import { usageEvent } from "../support/usage-events";

const record = {
  id: "req_01jabcdefghjkmnpqrstvwxyz1",
  tenantId: "ten_a",
  keyId: "key_a",
  method: "GET",
  route: "/gateway/v1/keys",
  status: 429,
  ts: "2026-11-22T10:15:00.000Z",
  clientIp: "203.0.113.7",
};

describe("request audit fields", () => {
  it("cuts the User-Agent to 256 characters and leaves out an address longer than any real one, keeping the event valid", () => {
    const event = clientFields(usageEvent({ clientIp: "x".repeat(65), userAgent: "u".repeat(300) }));
    expect(event.clientIp).toBeUndefined();
    expect(event.userAgent).toBe("u".repeat(256));
    expect(UsageEventSchema.safeParse(event).success).toBe(true);
    expect(clientFields(usageEvent({ clientIp: "2001:db8::1" })).clientIp).toBe("2001:db8::1");
    // Messages from before the change (no client fields) are still valid.
    expect(UsageEventSchema.safeParse(usageEvent()).success).toBe(true);
  });

  it("takes an envelope of audit records only; rejects an invalid record with its index, keeping the rest", () => {
    expect(RequestAuditRecordSchema.safeParse(record).success).toBe(true);
    const parsed = parseUsageMessage({ v: 2, events: [], audit: [record, { ...record, status: 42 }] });
    expect(parsed.events).toEqual([]);
    expect(parsed.audit).toEqual([record]);
    expect(parsed.rejected).toEqual([
      {
        reason: "invalid audit record [1]: status: Too small: expected number to be >=100",
        event: { ...record, status: 42 },
      },
    ]);
    expect(parseUsageMessage({ v: 2, events: [], audit: [] }).rejected[0]?.reason).toBe(
      "invalid usage envelope: audit: Too small: expected array to have >=1 items",
    );
  });
});

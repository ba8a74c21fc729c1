/** A valid usage event for pure tests of the metering pipeline; override what the test is about. */
import type { UsageEvent } from "../../workers/metering/usage-event";

export const usageEvent = (over: Partial<UsageEvent> = {}): UsageEvent => ({
  id: "req_01jabcdefghjkmnpqrstvwxyz0",
  tenantId: "ten_a",
  keyId: "key_a",
  env: "live",
  method: "GET",
  route: "/v1/",
  status: 200,
  billable: true,
  units: 1,
  bytesIn: 10,
  bytesOut: 100,
  latencyMs: 7,
  ts: "2026-11-22T10:15:00.000Z",
  ...over,
});

/**
 * README "One request, in order" 1: every response carries a sortable `req_…` id in `X-Request-ID`;
 * ids made later sort after ids made earlier (ULID layout: millisecond time first).
 */
import { describe, expect, it } from "vitest";
import { gateway } from "../support/gateway";

const REQ_ID = /^req_[0-9a-hjkmnp-tv-z]{26}$/;

describe("request ids", () => {
  it("are req_… ids that sort by the time they were made, across requests and milliseconds", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await gateway("/health/live");
      await res.arrayBuffer();
      const id = res.headers.get("x-request-id") ?? "";
      expect(id).toMatch(REQ_ID);
      ids.push(id);
      // a new millisecond between requests, so the order is the time order, not the random tail's
      const t = Date.now();
      while (Date.now() === t) await scheduler.wait(1);
    }
    expect(new Set(ids).size).toBe(5);
    expect([...ids].sort()).toEqual(ids);
    // also on a refused proxy request (a gateway error carries the same id in its body)
    const refused = await gateway("/v1/no-key");
    const body = await refused.json<{ request_id: string }>();
    expect(body.request_id).toBe(refused.headers.get("x-request-id"));
    expect(body.request_id > (ids[4] as string)).toBe(true);
  });
});

/**
 * The action log's pure parts: which fields a change moved (workers/audit/changes.ts) and the entry
 * a handler that set no detail still gets from its route (workers/audit/record.ts).
 */
import { describe, expect, it } from "vitest";
import { entryHash, stableJson } from "../../workers/audit/chain";
import { added, created, diff } from "../../workers/audit/changes";
import { routeDetail } from "../../workers/audit/record";

describe("diff", () => {
  it("keeps only the listed fields that changed, dates as ISO strings", () => {
    const at = new Date("2026-12-01T09:00:00.123Z");
    const before = { name: "a", revokedAt: null, ipAllowlist: ["10.0.0.0/8"], hash: "h1" };
    const after = { name: "a", revokedAt: at, ipAllowlist: ["10.0.0.0/8"], hash: "h2" };
    expect(diff(before, after, ["name", "revokedAt", "ipAllowlist"])).toEqual({
      revokedAt: { before: null, after: "2026-12-01T09:00:00.123Z" },
    });
  });

  it("compares objects by content, not key order", () => {
    expect(diff({ o: { a: 1, b: 2 } }, { o: { b: 2, a: 1 } }, ["o"])).toEqual({});
    expect(diff({ o: { a: 1 } }, { o: { a: 2 } }, ["o"])).toEqual({
      o: { before: { a: 1 }, after: { a: 2 } },
    });
  });

  it("a made row is every listed field from null; absent is null", () => {
    expect(created({ name: "n", role: "admin" }, ["name", "role", "expiresAt"])).toEqual({
      name: { before: null, after: "n" },
      role: { before: null, after: "admin" },
    });
    expect(diff(undefined, { name: "n" }, ["name"])).toEqual({ name: { before: null, after: "n" } });
  });

  it("changes hash the same as they are stored: a Date never hashes as {}", async () => {
    const changes = added("link", { expiresAt: new Date("2026-12-01T09:15:00Z") });
    expect(stableJson(changes)).toBe(stableJson(JSON.parse(JSON.stringify(changes))));
    expect(stableJson(changes)).toContain("2026-12-01T09:15:00.000Z");
    const entry = {
      chain: "ten_1",
      occurredAt: "2026-12-01T09:00:00.000Z",
      actorType: "admin",
      actorId: "admin_token",
      action: "portal_link.create",
      targets: [],
      changes,
      requestId: null,
      clientIp: null,
      userAgent: null,
    };
    const stored = { ...entry, changes: JSON.parse(JSON.stringify(changes)) };
    expect(await entryHash("action", 1, "0".repeat(64), entry)).toBe(
      await entryHash("action", 1, "0".repeat(64), stored),
    );
  });
});

describe("routeDetail", () => {
  it("names the action by method and route, each path id a target typed by the segment before it", () => {
    expect(
      routeDetail("POST", "/console/tenants/:id/keys/:keyId/revoke", { id: "ten_1", keyId: "key_2" }),
    ).toEqual({
      action: "POST /console/tenants/:id/keys/:keyId/revoke",
      tenantId: "ten_1",
      targets: [
        { type: "tenant", id: "ten_1" },
        { type: "key", id: "key_2" },
      ],
    });
  });

  it("belongs to no tenant when the path names none", () => {
    expect(routeDetail("POST", "/console/dead-letters/:id", { id: "dl_1" })).toEqual({
      action: "POST /console/dead-letters/:id",
      tenantId: null,
      targets: [{ type: "dead_letter", id: "dl_1" }],
    });
    expect(routeDetail("POST", "/admin/v1/billing/report", {})).toMatchObject({
      tenantId: null,
      targets: [],
    });
  });
});

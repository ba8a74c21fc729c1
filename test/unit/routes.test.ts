import { describe, expect, it } from "vitest";
import { loadRoutes, matchRoute } from "../../workers/edge/route-table";

describe("route table", () => {
  const routes = loadRoutes(
    JSON.stringify([
      { prefix: "/v1/", cost: 1 },
      { prefix: "/v1/reports/", cost: 5, entitlement: "reports" },
    ]),
  );

  it("picks the longest matching prefix and applies defaults", () => {
    expect(matchRoute(routes, "/v1/reports/q3")?.cost).toBe(5);
    expect(matchRoute(routes, "/v1/reports")?.cost).toBe(5);
    expect(matchRoute(routes, "/v1")?.prefix).toBe("/v1/");
    expect(matchRoute(routes, "/v1/users")).toMatchObject({ prefix: "/v1/", cost: 1, billable: true });
  });

  it("matches nothing outside the table", () => {
    expect(matchRoute(routes, "/v2/users")).toBeUndefined();
    expect(matchRoute(routes, "/v10/users")).toBeUndefined();
    expect(matchRoute(routes, "/v")).toBeUndefined();
    expect(matchRoute(routes, "/admin/v1/plans")).toBeUndefined();
  });

  it("rejects a bad table with a message naming the problem", () => {
    expect(() => loadRoutes(JSON.stringify([{ prefix: "v1", cost: 1 }]))).toThrow(/ROUTES is invalid/);
    expect(() => loadRoutes(JSON.stringify([{ prefix: "/v1/", cost: -1 }]))).toThrow(/ROUTES is invalid/);
    expect(() => loadRoutes(JSON.stringify([{ prefix: "/v1/", colour: "red" }]))).toThrow(
      /ROUTES is invalid/,
    );
  });
});

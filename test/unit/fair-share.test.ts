import { describe, expect, it } from "vitest";
import { fairShare } from "../../workers/edge/shed";

describe("fair share (max-min, water-filling)", () => {
  it("has no cap while every demand fits the limit", () => {
    expect(fairShare(10, [3, 3, 4])).toBe(Number.POSITIVE_INFINITY);
    expect(fairShare(10, [])).toBe(Number.POSITIVE_INFINITY);
  });

  it("splits the limit equally between equal demands over it", () => {
    expect(fairShare(12, [10, 10, 10])).toBe(4);
  });

  it("gives small tenants all they ask and the rest to the big one", () => {
    // 1 + 2 leave 17 of 20 for the flooder.
    expect(fairShare(20, [1, 2, 50])).toBe(17);
  });

  it("caps the tenant most over its share first as the limit falls", () => {
    const demands = [1, 7, 20];
    // Above an equal split (28 / 3 < 7 < 20) the middle tenant keeps all it asks; only the largest is capped.
    expect(fairShare(18, demands)).toBe(10);
    expect(fairShare(15, demands)).toBe(7);
    // Lower still, the two big ones share what the small one leaves.
    expect(fairShare(9, demands)).toBe(4);
  });

  it("never goes below one request per tenant", () => {
    expect(fairShare(4, [5, 5, 5, 5, 5, 5, 5, 5])).toBe(1);
  });
});

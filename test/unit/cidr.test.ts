import { describe, expect, it } from "vitest";
import { ipAllowed, parseCidr, parseIp } from "../../durable-objects/cidr";

describe("CIDR allowlists", () => {
  it("matches IPv4 blocks at their boundaries", () => {
    const list = ["10.1.0.0/16", "192.168.1.7"];
    expect(ipAllowed("10.1.0.0", list)).toBe(true);
    expect(ipAllowed("10.1.255.255", list)).toBe(true);
    expect(ipAllowed("10.2.0.0", list)).toBe(false);
    expect(ipAllowed("10.0.255.255", list)).toBe(false);
    expect(ipAllowed("192.168.1.7", list)).toBe(true);
    expect(ipAllowed("192.168.1.8", list)).toBe(false);
  });

  it("matches IPv6 blocks, compressed or not", () => {
    const list = ["2001:db8::/32"];
    expect(ipAllowed("2001:db8::1", list)).toBe(true);
    expect(ipAllowed("2001:0db8:ffff:ffff:ffff:ffff:ffff:ffff", list)).toBe(true);
    expect(ipAllowed("2001:db9::1", list)).toBe(false);
    expect(ipAllowed("::1", ["::1/128"])).toBe(true);
    expect(ipAllowed("::2", ["::1/128"])).toBe(false);
  });

  it("treats IPv4-mapped IPv6 as IPv4 and never mixes families otherwise", () => {
    expect(ipAllowed("::ffff:10.1.2.3", ["10.1.0.0/16"])).toBe(true);
    expect(ipAllowed("10.1.2.3", ["::/0"])).toBe(false);
    expect(ipAllowed("2001:db8::1", ["0.0.0.0/0"])).toBe(false);
  });

  it("allows everything with /0 of the same family", () => {
    expect(ipAllowed("203.0.113.9", ["0.0.0.0/0"])).toBe(true);
    expect(ipAllowed("2001:db8::1", ["::/0"])).toBe(true);
  });

  it("rejects malformed addresses and blocks", () => {
    for (const bad of [
      "",
      "1.2.3",
      "1.2.3.256",
      "1.2.3.4/33",
      "::1/129",
      "1::2::3",
      "gggg::",
      "1.2.3.4/8/1",
      "1.2.3.4/-1",
    ]) {
      expect(parseCidr(bad), bad).toBeNull();
    }
    expect(parseIp("not-an-ip")).toBeNull();
    expect(ipAllowed("not-an-ip", ["0.0.0.0/0"])).toBe(false);
    expect(ipAllowed("", ["0.0.0.0/0"])).toBe(false);
  });
});

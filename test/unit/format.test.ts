/**
 * How the web faces write money (Stripe's minor units, the currency's own digits, exact for any
 * size), instants (UTC to the minute) and links (http(s) only).
 */
import { describe, expect, it } from "vitest";
import { formatMoney, formatUtc, httpUrl, minorUnitDigits } from "../../workers/web/format";

describe("formatMoney", () => {
  it("writes two decimals for usd and eur, none for jpy and krw, three for kwd", () => {
    expect(formatMoney(123456, "usd")).toBe("$1,234.56");
    expect(formatMoney(5, "usd")).toBe("$0.05");
    expect(formatMoney(0, "usd")).toBe("$0.00");
    expect(formatMoney(2900, "EUR")).toBe("€29.00");
    expect(formatMoney(2900, "jpy")).toBe("¥2,900");
    expect(formatMoney(15000, "krw")).toBe("₩15,000");
    expect(formatMoney(1234, "kwd")).toBe("KWD\u00a01.234");
  });

  it("takes the exponent from Stripe, not ISO: isk is billed in hundredths", () => {
    expect(minorUnitDigits("isk")).toBe(2);
    expect(formatMoney(10000, "isk")).toBe("ISK\u00a0100");
  });

  it("is exact to the last minor unit however large, and signs refunds", () => {
    expect(formatMoney(Number.MAX_SAFE_INTEGER, "usd")).toBe("$90,071,992,547,409.91");
    expect(formatMoney(-1050, "usd")).toBe("-$10.50");
  });

  it("falls back to the decimal and the code for a code Intl does not know", () => {
    expect(formatMoney(1234, "zz1")).toBe("12.34 ZZ1");
  });
});

describe("formatUtc", () => {
  it("writes an instant in UTC to the minute", () => {
    expect(formatUtc("2027-03-01T10:05:59.999Z")).toBe("2027-03-01 10:05 UTC");
    expect(formatUtc(new Date(Date.UTC(2027, 0, 2, 3, 4)))).toBe("2027-01-02 03:04 UTC");
  });
});

describe("httpUrl", () => {
  it("keeps http(s) URLs and drops every other scheme or junk", () => {
    expect(httpUrl("https://invoice.stripe.com/i/acct/x")).toBe("https://invoice.stripe.com/i/acct/x");
    expect(httpUrl("http://localhost:12111/pay")).toBe("http://localhost:12111/pay");
    for (const bad of [
      "javascript:alert(1)",
      "data:text/html,x",
      "//evil.example/x",
      "not a url",
      "",
      null,
    ]) {
      expect(httpUrl(bad)).toBeNull();
    }
  });
});

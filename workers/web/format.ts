/**
 * How the web faces write money and instants: pure functions, no I/O.
 *
 * Money arrives as Stripe does it — an integer in the currency's minor unit — and Stripe's minor
 * unit is not always ISO 4217's (ISK is billed in hundredths although ISO gives it none), so the
 * exponent comes from Stripe's own lists and only the presentation (symbol, grouping) from Intl.
 * The decimal is built from the integer's digits, never by dividing a float, so a total is shown to
 * the last minor unit however large it is.
 */

/** Stripe's zero-decimal currencies (amounts are whole units). */
const ZERO_DECIMAL = new Set([
  "bif",
  "clp",
  "djf",
  "gnf",
  "jpy",
  "kmf",
  "krw",
  "mga",
  "pyg",
  "rwf",
  "ugx",
  "vnd",
  "vuv",
  "xaf",
  "xof",
  "xpf",
]);

/** Stripe's three-decimal currencies. */
const THREE_DECIMAL = new Set(["bhd", "jod", "kwd", "omr", "tnd"]);

/** Digits after the decimal point in Stripe's minor unit of `currency`. */
export function minorUnitDigits(currency: string): number {
  const code = currency.toLowerCase();
  if (ZERO_DECIMAL.has(code)) return 0;
  if (THREE_DECIMAL.has(code)) return 3;
  return 2;
}

/** `minor` as an exact decimal string in major units: 123456 with 2 digits → "1234.56". */
function decimal(minor: number, digits: number): string {
  const sign = minor < 0 ? "-" : "";
  const magnitude = BigInt(Math.abs(Math.trunc(minor))).toString();
  if (digits === 0) return `${sign}${magnitude}`;
  const padded = magnitude.padStart(digits + 1, "0");
  return `${sign}${padded.slice(0, -digits)}.${padded.slice(-digits)}`;
}

/**
 * An amount in minor units of `currency` (ISO 4217, any case) for a person: `formatMoney(123456,
 * "usd")` → "$1,234.56", `formatMoney(1234, "jpy")` → "¥1,234". An unknown code falls back to the
 * bare decimal and the code ("12.34 XYZ") rather than failing the page.
 */
export function formatMoney(minor: number, currency: string): string {
  const digits = minorUnitDigits(currency);
  const exact = decimal(minor, digits);
  try {
    const code = currency.toUpperCase();
    const usual = new Intl.NumberFormat("en-US", { style: "currency", currency: code }).resolvedOptions();
    // Intl's usual digits for the currency, widened where Stripe's minor unit carries more (ISK).
    const format = new Intl.NumberFormat("en-US", {
      style: "currency",
      currency: code,
      minimumFractionDigits: Math.min(usual.minimumFractionDigits ?? digits, digits),
      maximumFractionDigits: Math.max(usual.maximumFractionDigits ?? digits, digits),
    });
    // Intl formats a decimal string exactly (no float in between); the lib types only know numbers.
    return format.format(exact as unknown as number);
  } catch (error) {
    if (error instanceof RangeError) return `${exact} ${currency.toUpperCase()}`;
    throw error;
  }
}

/** An instant as a person reads it, in UTC to the minute: "2027-03-01 10:00 UTC". */
export function formatUtc(at: Date | string | number): string {
  const iso = new Date(at).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** Only http(s) URLs become links: a stored URL with another scheme (`javascript:`) stays text. */
export function httpUrl(value: string | null | undefined): string | null {
  if (!value) return null;
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
  } catch {
    return null;
  }
}
